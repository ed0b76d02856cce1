// Command checker decides whether a history recorded by `vectron chaos` is
// linearizable, using Porcupine with one register per point id (the history
// is partitioned by key, so each key is checked on its own).
//
// Input: a JSON file {"operations": [...]} where each operation is
//
//	{"client": 3, "key": "17", "op": "put"|"get"|"delete",
//	 "value": "c3-41",            // put: the value written
//	 "call": 1200, "return": 5400, // nanoseconds since the run started
//	 "outcome": "ok"|"unknown",
//	 "found": true, "read": "c1-9", // get: whether the point existed, its value
//	 "deleted": 1}                  // delete: how many points it removed
//
// A write whose outcome is unknown (timeout, 5xx, lost connection) may have
// taken effect at any time after its call, or never: it gets an infinite
// return time. Reads whose outcome is unknown have no effect and are left
// out by the recorder. Definite failures are left out too.
//
// Exit status: 0 linearizable, 1 not linearizable (an HTML visualisation is
// written to -viz), 2 the check could not be completed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

type record struct {
	Client  int    `json:"client"`
	Key     string `json:"key"`
	Op      string `json:"op"`
	Value   string `json:"value"`
	Call    int64  `json:"call"`
	Return  int64  `json:"return"`
	Outcome string `json:"outcome"`
	Found   bool   `json:"found"`
	Read    string `json:"read"`
	Deleted int    `json:"deleted"`
}

type history struct {
	Operations []record `json:"operations"`
}

// input is what an operation asked for.
type input struct {
	key   string
	op    string
	value string
}

// output is what it got back; known is false for writes of unknown outcome.
type output struct {
	known   bool
	found   bool
	read    string
	deleted int
}

// register is the state of one key: absent, or holding a value.
type register struct {
	present bool
	value   string
}

func step(state, in, out interface{}) (bool, interface{}) {
	s := state.(register)
	i := in.(input)
	o := out.(output)
	switch i.op {
	case "put":
		return true, register{present: true, value: i.value}
	case "delete":
		if o.known {
			want := 0
			if s.present {
				want = 1
			}
			if o.deleted != want {
				return false, s
			}
		}
		return true, register{}
	case "get":
		if o.found != s.present {
			return false, s
		}
		return !s.present || o.read == s.value, s
	}
	return false, s
}

var model = porcupine.Model{
	Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range ops {
			k := op.Input.(input).key
			if _, seen := byKey[k]; !seen {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init:  func() interface{} { return register{} },
	Step:  step,
	Equal: func(a, b interface{}) bool { return a.(register) == b.(register) },
	DescribeOperation: func(in, out interface{}) string {
		i := in.(input)
		o := out.(output)
		switch i.op {
		case "put":
			if !o.known {
				return fmt.Sprintf("put(%s, %s) -> ?", i.key, i.value)
			}
			return fmt.Sprintf("put(%s, %s)", i.key, i.value)
		case "delete":
			if !o.known {
				return fmt.Sprintf("delete(%s) -> ?", i.key)
			}
			return fmt.Sprintf("delete(%s) -> %d", i.key, o.deleted)
		default:
			if !o.found {
				return fmt.Sprintf("get(%s) -> absent", i.key)
			}
			return fmt.Sprintf("get(%s) -> %s", i.key, o.read)
		}
	},
	DescribeState: func(state interface{}) string {
		s := state.(register)
		if !s.present {
			return "absent"
		}
		return s.value
	},
}

func operations(h history) ([]porcupine.Operation, error) {
	ops := make([]porcupine.Operation, 0, len(h.Operations))
	for n, r := range h.Operations {
		switch r.Op {
		case "put", "delete", "get":
		default:
			return nil, fmt.Errorf("operation %d: unknown op %q", n, r.Op)
		}
		known := r.Outcome == "ok"
		if !known && r.Outcome != "unknown" {
			return nil, fmt.Errorf("operation %d: outcome %q is neither ok nor unknown", n, r.Outcome)
		}
		if !known && r.Op == "get" {
			continue
		}
		ret := r.Return
		if !known {
			ret = math.MaxInt64
		}
		if ret < r.Call {
			return nil, fmt.Errorf("operation %d returns before it is called", n)
		}
		ops = append(ops, porcupine.Operation{
			ClientId: r.Client,
			Input:    input{key: r.Key, op: r.Op, value: r.Value},
			Call:     r.Call,
			Output:   output{known: known, found: r.Found, read: r.Read, deleted: r.Deleted},
			Return:   ret,
		})
	}
	return ops, nil
}

func main() {
	path := flag.String("history", "history.json", "the history to check")
	viz := flag.String("viz", "linearizability.html", "where to write the visualisation when the check fails")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up (exit 2) after this long")
	flag.Parse()

	raw, err := os.ReadFile(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "checker:", err)
		os.Exit(2)
	}
	var h history
	if err := json.Unmarshal(raw, &h); err != nil {
		fmt.Fprintf(os.Stderr, "checker: %s: %v\n", *path, err)
		os.Exit(2)
	}
	ops, err := operations(h)
	if err != nil {
		fmt.Fprintf(os.Stderr, "checker: %s: %v\n", *path, err)
		os.Exit(2)
	}
	started := time.Now()
	result, info := porcupine.CheckOperationsVerbose(model, ops, *timeout)
	elapsed := time.Since(started).Round(time.Millisecond)
	switch result {
	case porcupine.Ok:
		fmt.Printf("linearizable: %d operations checked in %s\n", len(ops), elapsed)
	case porcupine.Illegal:
		fmt.Printf("NOT linearizable: %d operations checked in %s\n", len(ops), elapsed)
		if err := porcupine.VisualizePath(model, info, *viz); err != nil {
			fmt.Fprintln(os.Stderr, "checker: cannot write the visualisation:", err)
		} else {
			fmt.Printf("visualisation: %s\n", *viz)
		}
		os.Exit(1)
	default:
		fmt.Printf("inconclusive: the check timed out after %s (%d operations)\n", elapsed, len(ops))
		os.Exit(2)
	}
}
