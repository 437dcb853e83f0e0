// Package presence defines the registry of which users are online, on which
// connections, and when they were last seen. Engines live in sub-packages:
// memory (single node), later redis.
package presence
