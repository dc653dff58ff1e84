package authz

import "context"

// Tracer records decisions as trace spans (the service's OpenTelemetry
// tracer). StartCheck is called before a decision with the request's
// context; it returns the context the decision runs with (carrying the
// span, so the key lookup's waits become its children) and the function
// that ends the span with the decision. Neither may keep r or d.
type Tracer interface {
	StartCheck(ctx context.Context, r *Request) (context.Context, func(d *Decision))
}

// Recorder is told about every decision with its request and context (the
// audit log). It must not block or keep r or d.
type Recorder interface {
	Record(ctx context.Context, r *Request, d *Decision)
}

// maxKeyIDBytes bounds Decision.KeyID: the kid is the client's, up to the
// token size limit.
const maxKeyIDBytes = 128

// boundKeyID cuts kid to maxKeyIDBytes.
func boundKeyID(kid string) string {
	if len(kid) > maxKeyIDBytes {
		return kid[:maxKeyIDBytes]
	}
	return kid
}

// startCheck starts the tracer's span. The tracer gets a copy of r, so r
// itself (on the caller's stack) does not escape when tracing is off.
func (s *Server) startCheck(ctx context.Context, r *Request) (context.Context, func(*Decision)) {
	rc := *r
	return s.tracer.StartCheck(ctx, &rc)
}

// finishCheck ends the span (end may be nil) and tells the recorder (may be
// nil). d is a copy, as for the observer.
func (s *Server) finishCheck(ctx context.Context, r *Request, d Decision, end func(*Decision)) {
	if end != nil {
		end(&d)
	}
	if s.recorder != nil {
		rc := *r
		s.recorder.Record(ctx, &rc, &d)
	}
}
