package main

import (
	"context"
	"fmt"
	"log/slog"
)

// redisLog carries go-redis's own log lines (a failed dial while Redis is
// down, say) into bff's log at debug level instead of onto stderr:
// bff already logs every request a store outage fails, as an error.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}
