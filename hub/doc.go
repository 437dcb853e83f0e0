// Package hub routes events to the connections of this node.
//
// Connections join subjects (one per user, one per channel); the hub keeps
// one broker subscription per subject that has at least one local
// connection, so an event published to the broker by any node reaches every
// local connection joined to its subject. The hub knows nothing about
// conversations or frames: it moves opaque payloads, copying each one once
// and handing the same slice to every connection, with no allocation per
// recipient.
package hub
