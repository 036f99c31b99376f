package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// readUntilClosed reads c until the server closes it, failing after bound.
func readUntilClosed(t *testing.T, c net.Conn, bound time.Duration) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(bound)))
	_, err := io.Copy(io.Discard, c)
	require.NoError(t, err, "the server should have closed the connection within %s", bound)
}

// TestConnectionCap: with more idle connections opened than the cap, the server still
// answers an authorized request on a new connection (it evicts the longest-idle one)
// and on an open gRPC connection; the evicted connections are closed.
func TestConnectionCap(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.PresharedKey = "sekret"
		c.MaxConnections = 8
	})
	env.seed(t)
	var idle []net.Conn
	for range 20 {
		c, err := net.Dial("tcp", env.srv.HTTPAddr().String())
		require.NoError(t, err)
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	for range 3 {
		req, err := http.NewRequest(http.MethodPost, env.baseURL+"/v1/check", stringsReader(checkJSON("flow:f1", "execute", "user:anne", "")))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer sekret")
		resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, string(b))
	}
	resp, err := env.perms.Check(env.ctx(), checkReq("flow:f1", "execute", "user:anne"))
	require.NoError(t, err)
	require.True(t, resp.GetAllowed())
	// The first idle connections were closed: evicted or refused.
	readUntilClosed(t, idle[0], 20*time.Second)
	require.LessOrEqual(t, env.srv.conns.open.Load(), int64(8+1))
}

func stringsReader(s string) io.Reader { return &stringReader{s: s} }

type stringReader struct{ s string }

func (r *stringReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := copy(p, r.s)
	r.s = r.s[n:]
	return n, nil
}

// TestHTTPTimeouts: an idle keep-alive connection is closed after HTTPIdleTimeout, and
// a request whose body stalls is cut after HTTPReadTimeout, while a streamed response
// (Watch) outlives both.
func TestHTTPTimeouts(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.HTTPIdleTimeout = 300 * time.Millisecond
		c.HTTPReadTimeout = 300 * time.Millisecond
	})
	env.seed(t)

	c, err := net.Dial("tcp", env.srv.HTTPAddr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	start := time.Now()
	readUntilClosed(t, c, 20*time.Second)
	require.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "closed for idleness, not at once")

	slow, err := net.Dial("tcp", env.srv.HTTPAddr().String())
	require.NoError(t, err)
	defer slow.Close()
	_, err = io.WriteString(slow, "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"obj")
	require.NoError(t, err)
	readUntilClosed(t, slow, 20*time.Second)

	// A Watch stream lasts longer than both timeouts.
	wc, err := net.Dial("tcp", env.srv.HTTPAddr().String())
	require.NoError(t, err)
	defer wc.Close()
	_, err = io.WriteString(wc, "POST /v1/watch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	require.NoError(t, err)
	br := bufio.NewReader(wc)
	resp, err = http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	deadline := time.Now().Add(time.Second) // 3x the timeouts
	for time.Now().Before(deadline) {
		env.write(t, 2, "tenant:acme#viewer@user:w"+time.Now().Format("150405.000000000")[7:])
		line, err := readLine(resp.Body)
		require.NoError(t, err, "the Watch stream was cut")
		require.Contains(t, line, "changes")
	}
}

func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		_, err := r.Read(one)
		if err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
}
