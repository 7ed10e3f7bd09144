package outbox

import (
	"context"

	"github.com/linkbridge/linkbridge"
)

// ByType sends each message with the Sender of its ResourceType, or
// Default: one relay (ordering, retries, dead letters, operator commands,
// metrics) serves several write-back routes.
type ByType struct {
	Default Sender
	Types   map[string]Sender
}

// Send implements Sender.
func (b ByType) Send(ctx context.Context, m *linkbridge.OutboxMessage) (int, error) {
	if s, ok := b.Types[m.ResourceType]; ok {
		return s.Send(ctx, m)
	}
	if b.Default == nil {
		return 0, &PermanentError{Err: linkbridge.Errorf(linkbridge.EINVALID, "no write-back route sends %s messages", m.ResourceType)}
	}
	return b.Default.Send(ctx, m)
}
