package main

import (
	"io"
	"log/slog"
	"strings"
)

// devLog builds the human-readable logger of bff dev.
type devLog struct{ level string }

func (d *devLog) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(d.level)))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
