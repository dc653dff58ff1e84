package service

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultWatchDebounce is how long the config watcher waits after the last
// change before it reloads: an editor's save or a Kubernetes ConfigMap
// update is several file system events, and one reload should follow them.
const DefaultWatchDebounce = 250 * time.Millisecond

// watchConfig reloads the configuration (Reload: atomic, keeping warm
// caches, skipping unchanged bytes) when something changes in the
// directory of the configuration file, of the file a symbolic link there
// points to, or in tenants_dir. Directories, not files, are watched:
// Kubernetes updates a mounted ConfigMap by swapping the ..data symbolic
// link, which replaces every file at once and would end a watch on the old
// file. It returns what stops the watcher.
func (s *Service) watchConfig(ctx context.Context) (stop func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("service: watch config: %w", err)
	}
	debounce := s.opts.WatchDebounce
	if debounce <= 0 {
		debounce = DefaultWatchDebounce
	}
	watched := map[string]bool{}
	rewatch := func() {
		want := s.watchedDirs()
		for d := range watched {
			if !want[d] {
				_ = w.Remove(d)
				delete(watched, d)
			}
		}
		for d := range want {
			if watched[d] {
				continue
			}
			if err := w.Add(d); err != nil {
				s.log.Warn("cannot watch a configuration directory; SIGHUP still reloads", "dir", d, "error", err)
				continue
			}
			watched[d] = true
		}
	}
	rewatch()
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		timer := time.NewTimer(debounce)
		timer.Stop()
		defer timer.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op == fsnotify.Chmod {
					continue // permissions and times only; the bytes did not change
				}
				timer.Reset(debounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.log.Warn("config watch error", "error", err)
			case <-timer.C:
				_ = s.Reload(wctx) // Reload logs and counts the outcome
				rewatch()          // tenants_dir may have changed or appeared
			}
		}
	}()
	return func() {
		cancel()
		_ = w.Close()
		<-done
	}, nil
}

// watchedDirs are the directories whose changes may change the
// configuration.
func (s *Service) watchedDirs() map[string]bool {
	s.mu.Lock()
	tenantsDir := s.tenantsDir
	s.mu.Unlock()
	dirs := map[string]bool{filepath.Dir(s.opts.ConfigPath): true}
	if target, err := filepath.EvalSymlinks(s.opts.ConfigPath); err == nil {
		dirs[filepath.Dir(target)] = true
	}
	if tenantsDir != "" {
		dirs[tenantsDir] = true
	}
	return dirs
}
