package testredis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Do sends one command to the Redis server at addr on a new connection and
// returns its reply: a string for simple and bulk strings, an int64, nil
// for a null, a []any for an array; a server error is returned as an error.
// It is a few lines of RESP2, enough for setting up and inspecting test
// servers without a client library; tests of Redis-backed code use a real
// client for everything else.
func Do(ctx context.Context, addr string, args ...string) (any, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)

	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, err
	}
	return readReply(bufio.NewReader(conn))
}

// ServerError is an error reply of the server.
type ServerError string

func (e ServerError) Error() string { return "redis: " + string(e) }

func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return nil, fmt.Errorf("testredis: bad reply line %q", line)
	}
	kind, body := line[0], line[1:len(line)-2]
	switch kind {
	case '+':
		return body, nil
	case '-':
		return nil, ServerError(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("testredis: bad bulk length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("testredis: bad array length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		items := make([]any, n)
		for i := range items {
			if items[i], err = readReply(r); err != nil {
				var se ServerError
				if !errors.As(err, &se) {
					return nil, err
				}
				items[i] = se // an error inside an array, as in EXEC
			}
		}
		return items, nil
	default:
		return nil, fmt.Errorf("testredis: unknown reply type %q", kind)
	}
}

// ping reports whether a Redis server answers PING at addr, and what went
// wrong if it does not (a refused connection, or a LOADING error while it
// reads its data). A server that wants a password first is up.
func ping(ctx context.Context, addr string) error {
	reply, err := Do(ctx, addr, "PING")
	var se ServerError
	if errors.As(err, &se) && strings.HasPrefix(string(se), "NOAUTH") {
		return nil
	}
	if err != nil {
		return err
	}
	if reply != "PONG" {
		return fmt.Errorf("PING answered %v", reply)
	}
	return nil
}
