package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
)

// Server is a private PostgreSQL server a test starts and stops at will (to test
// restarts), in a temporary directory, on a loopback port that stays the same across
// restarts.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	// URL is the server's URL, database "postgres".
	URL string
}

// StartServer runs initdb and starts a private server. It skips the test as URL does
// when RELATA_TEST_POSTGRES is unset (such tests run where the suite runs), and skips
// (fails under CI=true) when the server binaries are not installed. Run as root, the
// server runs as the postgres user.
func StartServer(t testing.TB) *Server {
	t.Helper()
	URL(t)
	bin := findBin()
	if bin == "" {
		msg := "PostgreSQL server binaries (initdb, pg_ctl) not found: install them (Debian: apt-get install -y postgresql)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir, err := os.MkdirTemp("", "relata-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root without a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &Server{t: t, bin: bin, dir: dir, port: port,
		URL: fmt.Sprintf("postgres://relata@127.0.0.1:%d/postgres?sslmode=disable", port)}
	s.run("initdb", "-D", filepath.Join(dir, "data"), "-U", "relata", "--auth=trust", "--encoding=UTF8", "--no-locale")
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server (again) and waits until it accepts connections.
func (s *Server) Start() {
	s.t.Helper()
	s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-l", filepath.Join(s.dir, "log"), "-w", "-t", "120",
		"-o", fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s", s.port, s.dir), "start")
}

// Stop stops the server at once (fast shutdown: open connections are closed).
func (s *Server) Stop() {
	s.t.Helper()
	if _, err := os.Stat(filepath.Join(s.dir, "data", "postmaster.pid")); err != nil {
		return
	}
	s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "fast", "-w", "-t", "120", "stop")
}

func (s *Server) run(name string, args ...string) {
	s.t.Helper()
	path := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		s.t.Fatalf("pgtest: %s: %v\n%s\n%s", name, err, out, log)
	}
}

// findBin returns the directory of initdb and pg_ctl: on PATH, else the newest
// /usr/lib/postgresql/*/bin; "" when there is none.
func findBin() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(r)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}
