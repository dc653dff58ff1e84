package redisstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// subscribeCheckInterval is how often an idle subscription pings Redis;
// a failed ping reconnects it and re-subscribes. Messages published while
// it is disconnected are lost, so callers also poll.
const subscribeCheckInterval = time.Second

// Subscribe calls fn with the tenant and provider of every snapshot Save
// announces (from any replica, this one included) until ctx is done, then
// returns ctx's error. The subscription reconnects by itself after a Redis
// outage; announcements during the outage are lost (pub/sub is at most
// once), so it speeds up adoption but never replaces polling. fn runs on
// Subscribe's goroutine and must return quickly. Malformed messages are
// ignored.
func (s *Store) Subscribe(ctx context.Context, fn func(tenant, provider string)) error {
	ps := s.client.Subscribe(ctx, s.updatesChannel())
	defer ps.Close()
	ch := ps.Channel(
		redis.WithChannelHealthCheckInterval(subscribeCheckInterval),
		redis.WithChannelPingTimeout(s.timeout),
		redis.WithChannelReconnectTimeout(s.timeout),
	)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m, ok := <-ch:
			if !ok {
				return errors.New("redisstore: subscription closed")
			}
			tenant, provider, ok := strings.Cut(m.Payload, "/")
			if !ok || checkIDs(tenant, provider) != nil {
				continue
			}
			fn(tenant, provider)
		}
	}
}
