// Package memory is the single-node presence.Registry: connection sets and
// last-seen times held in process memory, lost on restart (a restarted node
// has no connections anyway; last-seen times fall back to zero).
package memory
