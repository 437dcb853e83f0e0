// Package store defines the message store: conversations, members, messages
// with per-conversation sequence numbers, per-user cursors, and channel
// history. Engines live in sub-packages (sqlite, later postgres); every engine
// must pass the contract suite in store/storetest.
package store
