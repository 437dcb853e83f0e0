package web_test

import (
	"fmt"
	"testing"
)

// TestRemovedFromGroup: carol has a group open when its owner removes her;
// her page drops it from the list and closes it, over WebSocket (the live
// member event) and over long-polling (the removal the next poll reports).
func TestRemovedFromGroup(t *testing.T) {
	for _, transport := range []string{"websocket", "longpoll"} {
		t.Run(transport, func(t *testing.T) {
			env := chatServer(t, nil)
			var created struct {
				Conversation struct {
					ID string `json:"id"`
				} `json:"conversation"`
			}
			apiCall(t, env, "alice", "POST", "/api/conversations/group", map[string]any{"title": "Team", "members": []string{"bob", "carol"}}, &created)
			group := created.Conversation.ID
			apiCall(t, env, "alice", "POST", "/api/conversations/direct", map[string]any{"peer": "carol"}, &created)
			direct := created.Conversation.ID

			c := newUser(t, "carol").open(pageURL(t, env)+"?transports="+transport, desktopW, desktopH)
			c.login()
			c.waitConnected(transport)
			c.openChat(group)

			apiCall(t, env, "alice", "DELETE", "/api/conversations/"+group+"/members/carol", nil, nil)
			// A long poll reports the removal with whatever it returns
			// next, and does not return for it alone: a message does.
			apiCall(t, env, "alice", "POST", "/api/conversations/"+direct+"/messages",
				map[string]any{"client_msg_id": "a-1", "body": "you are out of Team"}, nil)
			c.waitFor("the group gone from the list and closed", fmt.Sprintf(
				`!document.querySelector('#convs li[data-conv=%q]') && document.getElementById("composer").hidden`+
					` && document.getElementById("chat-title").textContent === "Pick a conversation"`+
					` && !window.duplexClient.conversations.has(%q)`, group, group))
			c.openChat(direct)
			c.waitMessage("you are out of Team")
			c.screenshot("removed-" + transport)
		})
	}
}
