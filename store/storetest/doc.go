// Package storetest is the contract test suite for store.Store engines.
// Every engine runs it from its own tests:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
//	}
//
// The suite checks behaviour callers rely on (sequence numbers without gaps
// under concurrency, idempotent retries, cursor rules, error sentinels), not
// an engine's internals, so a new engine is done when it passes.
package storetest
