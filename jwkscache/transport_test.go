package jwkscache

import (
	"net/http"
	"testing"
)

func TestTransports_SharedByPinSetAndReleasedWithTheLastProvider(t *testing.T) {
	ts := newTransports(&http.Transport{MaxIdleConnsPerHost: 2}, 16)
	a, b := []byte{1, 2}, []byte{3, 4}
	plain, releasePlain := ts.get(nil)
	if plain != ts.base {
		t.Fatal("an unpinned provider does not get the shared transport")
	}
	releasePlain()
	t1, r1 := ts.get([][]byte{a, b})
	t2, r2 := ts.get([][]byte{b, a, a})
	t3, r3 := ts.get([][]byte{a})
	if t1 != t2 {
		t.Fatal("the same pins in another order get another transport")
	}
	if t1 == t3 || t1 == plain {
		t.Fatal("different pins share a transport")
	}
	r1()
	r1() // a second release of the same provider counts once
	if _, ok := ts.pinned[pinKey([][]byte{a, b})]; !ok {
		t.Fatal("transport dropped while a provider still uses it")
	}
	r2()
	if _, ok := ts.pinned[pinKey([][]byte{a, b})]; ok {
		t.Fatal("transport kept after its last provider closed")
	}
	r3()
	bt := ts.base
	if bt.MaxConnsPerHost != 16 || bt.MaxIdleConnsPerHost != 2 || bt.MaxIdleConns != 64 || bt.IdleConnTimeout != idleConnTimeout {
		t.Fatalf("limits = %d per host, %d idle per host, %d idle, %v timeout",
			bt.MaxConnsPerHost, bt.MaxIdleConnsPerHost, bt.MaxIdleConns, bt.IdleConnTimeout)
	}
}
