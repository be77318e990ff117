package boltstore

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/gobff/bff/session"
)

func TestRecordRoundTrip(t *testing.T) {
	now := time.Now()
	recs := []*session.Record{
		{}, // zero times, empty strings, no data
		{
			Key:           session.KeyOf("x"),
			Version:       math.MaxUint64,
			Issuer:        "https://op.example",
			Subject:       "ü\x00ser",
			SID:           "sid",
			CreatedAt:     now, // monotonic reading and nanoseconds
			ExpiresAt:     time.Unix(math.MaxInt64/2, 999_999_999),
			IdleExpiresAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.FixedZone("x", -3600)),
			Data:          bytes.Repeat([]byte{0, 1, 255}, 1000),
		},
	}
	for _, want := range recs {
		b := encodeRecord(want)
		if len(b) > encodedSize(want) {
			t.Errorf("encoding is %d bytes, bound %d", len(b), encodedSize(want))
		}
		got, err := decodeRecord(want.Key, b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Key != want.Key || got.Version != want.Version || got.Issuer != want.Issuer ||
			got.Subject != want.Subject || got.SID != want.SID ||
			!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
			!got.IdleExpiresAt.Equal(want.IdleExpiresAt) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("round trip of\n%+v\ngave\n%+v", want, got)
		}
		// The decoded record must not alias the encoding, which may be
		// bolt's memory map.
		for i := range b {
			b[i] = 0xAA
		}
		if !bytes.Equal(got.Data, want.Data) || got.Issuer != want.Issuer {
			t.Error("decoded record aliases its encoding")
		}
	}
}

func TestDecodeRejectsCorruption(t *testing.T) {
	valid := encodeRecord(&session.Record{Issuer: "iss", Subject: "sub", Data: []byte("data")})
	for _, b := range [][]byte{
		nil,
		{},
		{2},               // unknown format
		valid[:5],         // truncated strings
		{1, 1, 200, 0, 0}, // issuer longer than the record
	} {
		if _, err := decodeRecord(session.Key{}, b); !errors.Is(err, errCorrupt) {
			t.Errorf("decodeRecord(%v) = %v, want errCorrupt", b, err)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(&session.Record{Issuer: "iss", Subject: "sub", SID: "sid", Data: []byte("data")}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(session.Key{}, b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := decodeRecord(session.Key{}, encodeRecord(rec))
		if err != nil {
			t.Fatal(err)
		}
		if again.Version != rec.Version || again.Issuer != rec.Issuer || again.Subject != rec.Subject ||
			again.SID != rec.SID || !again.ExpiresAt.Equal(rec.ExpiresAt) || !bytes.Equal(again.Data, rec.Data) {
			t.Fatalf("%+v re-decoded as %+v", rec, again)
		}
	})
}

func TestSortableTimeOrder(t *testing.T) {
	times := []time.Time{
		time.Time{},
		time.Unix(-1, 0),
		time.Unix(-1, 999_999_999),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Now(),
		time.Unix(math.MaxInt64/2, 0),
	}
	for i := 1; i < len(times); i++ {
		a, b := appendSortableTime(nil, times[i-1]), appendSortableTime(nil, times[i])
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("%v does not sort before %v", times[i-1], times[i])
		}
		if got, ok := parseSortableTime(b); !ok || !got.Equal(times[i]) {
			t.Errorf("parseSortableTime of %v = %v, %v", times[i], got, ok)
		}
	}
}
