package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"
)

// keysFileDoc is the YAML of a keys file (docs/security.md):
//
//	keys:
//	  - name: flow-runtime    # shown in logs and metrics, never the key
//	    sha256: 9f86d0...     # hex SHA-256 of the key; the key itself is never stored
//	    scopes: [read]
type keysFileDoc struct {
	Keys []struct {
		Name   string   `yaml:"name"`
		SHA256 string   `yaml:"sha256"`
		Scopes []string `yaml:"scopes"`
	} `yaml:"keys"`
}

// apiKey is one key of a keys file.
type apiKey struct {
	name   string
	sum    [sha256.Size]byte
	scopes scopeSet
}

// parseKeysFile parses and validates the keys file text b (named path in errors).
// Several keys may share scopes (rotation: the old and the new key are both valid
// until the old one is removed); names and hashes must be unique.
func parseKeysFile(path string, b []byte) ([]apiKey, error) {
	var doc keysFileDoc
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file: want a top-level 'keys:' list", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Keys) == 0 {
		return nil, fmt.Errorf("%s: no keys: want a top-level 'keys:' list of {name, sha256, scopes}", path)
	}
	names := map[string]bool{}
	sums := map[[sha256.Size]byte]string{}
	keys := make([]apiKey, 0, len(doc.Keys))
	for i, k := range doc.Keys {
		where := fmt.Sprintf("%s: keys[%d]", path, i)
		if k.Name == "" {
			return nil, fmt.Errorf("%s: name is empty: every key needs a name (shown in logs, never the key)", where)
		}
		where += fmt.Sprintf(" (%s)", k.Name)
		if names[k.Name] {
			return nil, fmt.Errorf("%s: the name is used twice", where)
		}
		names[k.Name] = true
		raw, err := hex.DecodeString(strings.TrimSpace(k.SHA256))
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("%s: sha256 %s: want the 64 hex digits of the key's SHA-256 (sha256sum, or printf %%s KEY | sha256sum)",
				where, quoteValue(k.SHA256))
		}
		key := apiKey{name: k.Name}
		copy(key.sum[:], raw)
		if other, ok := sums[key.sum]; ok {
			return nil, fmt.Errorf("%s: the same sha256 as key %q", where, other)
		}
		sums[key.sum] = k.Name
		if len(k.Scopes) == 0 {
			return nil, fmt.Errorf("%s: scopes are empty: want some of read, write, schema, admin", where)
		}
		for _, s := range k.Scopes {
			sc, err := ParseScope(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			key.scopes |= scopeBit(sc)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// keysFile is a keys file loaded in memory, reloaded by reload (SIGHUP) and by watch
// (on change). A reload that fails keeps the keys loaded before and logs why.
type keysFile struct {
	path string
	log  *slog.Logger
	mu   sync.Mutex // serializes reloads
	sum  [sha256.Size]byte
	keys atomic.Pointer[[]apiKey]
}

// loadKeysFile reads and validates the keys file at path.
func loadKeysFile(path string, log *slog.Logger) (*keysFile, error) {
	kf := &keysFile{path: path, log: log}
	if _, err := kf.reload(); err != nil {
		return nil, err
	}
	return kf, nil
}

// reload reads the file again and, when it changed and is valid, swaps the keys in.
// It reports whether the keys changed.
func (kf *keysFile) reload() (bool, error) {
	kf.mu.Lock()
	defer kf.mu.Unlock()
	b, err := os.ReadFile(kf.path)
	if err != nil {
		return false, fmt.Errorf("keys file: %w", err)
	}
	sum := sha256.Sum256(b)
	if kf.keys.Load() != nil && sum == kf.sum {
		return false, nil
	}
	keys, err := parseKeysFile(kf.path, b)
	if err != nil {
		return false, fmt.Errorf("keys file: %w", err)
	}
	kf.sum = sum
	kf.keys.Store(&keys)
	return true, nil
}

// reloadAndLog reloads and logs the outcome: the key names (never the keys) when they
// changed, the error (the old keys stay) when the file is bad.
func (kf *keysFile) reloadAndLog(ctx context.Context, why string) error {
	changed, err := kf.reload()
	if err != nil {
		kf.log.ErrorContext(ctx, "relata: keys file not reloaded; the keys loaded before stay valid", "why", why, "err", err)
		return err
	}
	if changed {
		keys := *kf.keys.Load()
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.name
		}
		kf.log.InfoContext(ctx, "relata: keys file reloaded", "why", why, "path", kf.path, "keys", strings.Join(names, ","))
	}
	return nil
}

// watch reloads the file whenever its content changes, checking every interval, until
// ctx ends. A file that stays bad is logged once per change, not once per interval.
func (kf *keysFile) watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastBad [sha256.Size]byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b, err := os.ReadFile(kf.path)
		if err != nil {
			continue // a file being replaced may be briefly absent; SIGHUP reports errors
		}
		sum := sha256.Sum256(b)
		kf.mu.Lock()
		same := sum == kf.sum
		kf.mu.Unlock()
		if same || sum == lastBad {
			continue
		}
		if err := kf.reloadAndLog(ctx, "file changed"); err != nil {
			lastBad = sum
		}
	}
}

// match returns the key whose hash is sum. Every key is compared, in constant time,
// so that the time taken says nothing about which key or how much of it matched.
func (kf *keysFile) match(sum [sha256.Size]byte) (apiKey, bool) {
	var found apiKey
	ok := 0
	for _, k := range *kf.keys.Load() {
		if subtle.ConstantTimeCompare(k.sum[:], sum[:]) == 1 {
			found, ok = k, 1
		}
	}
	return found, ok == 1
}
