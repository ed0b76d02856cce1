package main

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"
)

func check(t *testing.T, records []record) bool {
	t.Helper()
	ops, err := operations(history{Operations: records})
	if err != nil {
		t.Fatal(err)
	}
	return porcupine.CheckOperations(model, ops)
}

func TestAStaleReadIsCaught(t *testing.T) {
	// put v1 completes, put v2 completes, then a read returns v1.
	stale := []record{
		{Client: 0, Key: "k", Op: "put", Value: "v1", Call: 0, Return: 10, Outcome: "ok"},
		{Client: 0, Key: "k", Op: "put", Value: "v2", Call: 20, Return: 30, Outcome: "ok"},
		{Client: 1, Key: "k", Op: "get", Call: 40, Return: 50, Outcome: "ok", Found: true, Read: "v1"},
	}
	if check(t, stale) {
		t.Fatal("a read of an overwritten value passed")
	}
	stale[2].Read = "v2"
	if !check(t, stale) {
		t.Fatal("a read of the latest value failed")
	}
}

func TestAnUnknownWriteMayLandLateOrNever(t *testing.T) {
	records := []record{
		{Client: 0, Key: "k", Op: "put", Value: "v1", Call: 0, Return: 10, Outcome: "unknown"},
		{Client: 1, Key: "k", Op: "get", Call: 20, Return: 30, Outcome: "ok", Found: false},
		{Client: 1, Key: "k", Op: "get", Call: 40, Return: 50, Outcome: "ok", Found: true, Read: "v1"},
	}
	if !check(t, records) {
		t.Fatal("an unknown write that landed late was refused")
	}
	// But once it is seen, it cannot be unseen without another write: the
	// anomaly a retried write used to cause.
	records = append(records, record{Client: 2, Key: "k", Op: "put", Value: "v2", Call: 60, Return: 70, Outcome: "ok"},
		record{Client: 1, Key: "k", Op: "get", Call: 80, Return: 90, Outcome: "ok", Found: true, Read: "v1"})
	if check(t, records) {
		t.Fatal("v1 reappearing after an acknowledged v2 passed")
	}
}

func TestDeleteCountsAreChecked(t *testing.T) {
	records := []record{
		{Client: 0, Key: "k", Op: "delete", Call: 0, Return: 10, Outcome: "ok", Deleted: 1},
	}
	if check(t, records) {
		t.Fatal("deleting an absent point reported 1 and passed")
	}
}

func TestUnknownReadsAreDroppedAndBadRecordsRefused(t *testing.T) {
	ops, err := operations(history{Operations: []record{
		{Key: "k", Op: "get", Call: 0, Return: 1, Outcome: "unknown"},
		{Key: "k", Op: "put", Value: "a", Call: 0, Return: 1, Outcome: "unknown"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0].Return != math.MaxInt64 {
		t.Fatalf("want one put with an open end, got %+v", ops)
	}
	if _, err := operations(history{Operations: []record{{Op: "cas"}}}); err == nil {
		t.Fatal("an unknown op was accepted")
	}
}
