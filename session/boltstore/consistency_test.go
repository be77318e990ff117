package boltstore

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/storetest"
)

// TestConformance runs the conformance suite and, after every subtest,
// checks that the file's indexes agree exactly with its sessions: index
// bugs the interface hides (a stale expiry entry is harmless until it is
// not) show up here.
func TestConformance(t *testing.T) {
	newStore := func(tb testing.TB, clock *storetest.Clock) session.Store {
		path := filepath.Join(tb.TempDir(), "sessions.db")
		// Cleanups run last-in first-out: this one after the suite closed
		// the store.
		tb.Cleanup(func() { checkConsistent(tb, path) })
		s, err := Open(path, WithClock(clock.Now))
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
	reopen := func(tb testing.TB, clock *storetest.Clock, old session.Store) session.Store {
		path := old.(*Store).Path()
		if err := old.Close(); err != nil {
			tb.Fatal(err)
		}
		s, err := Open(path, WithClock(clock.Now))
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
	storetest.Run(t, newStore, storetest.Reopen(reopen))
}

func checkConsistent(tb testing.TB, path string) {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: DefaultOpenTimeout, ReadOnly: true})
	if err != nil {
		tb.Errorf("consistency check: %v", err)
		return
	}
	defer db.Close()
	if err := db.View(consistent); err != nil {
		tb.Errorf("consistency check of %s: %v", path, err)
	}
}

// consistent reports the first disagreement between the sessions bucket and
// the sid, sub and expiry indexes.
func consistent(tx *bolt.Tx) error {
	var wantSID, wantSub, wantExpiry [][]byte
	err := tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
		if len(k) != len(session.Key{}) {
			return fmt.Errorf("session key %x has length %d", k, len(k))
		}
		rec, err := decodeRecord(session.Key(k), v)
		if err != nil {
			return err
		}
		if rec.SID != "" {
			wantSID = append(wantSID, indexKey(rec.Issuer, rec.SID, rec.Key))
		}
		wantSub = append(wantSub, indexKey(rec.Issuer, rec.Subject, rec.Key))
		wantExpiry = append(wantExpiry, expiryKey(rec))
		return nil
	})
	if err != nil {
		return err
	}
	for _, idx := range []struct {
		bucket []byte
		want   [][]byte
	}{{bucketSID, wantSID}, {bucketSub, wantSub}, {bucketExpiry, wantExpiry}} {
		var got [][]byte
		if err := tx.Bucket(idx.bucket).ForEach(func(k, _ []byte) error {
			got = append(got, bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		slices.SortFunc(idx.want, bytes.Compare)
		if !slices.EqualFunc(got, idx.want, bytes.Equal) {
			return fmt.Errorf("%s index has %d entries %x, sessions call for %d %x",
				idx.bucket, len(got), got, len(idx.want), idx.want)
		}
	}
	return nil
}
