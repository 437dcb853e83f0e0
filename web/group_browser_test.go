package web_test

import (
	"slices"
	"strings"
	"testing"
)

// TestGroupChat: alice creates a group through the page's form; bob and
// carol see it appear, everyone sees everyone's messages, and alice's last
// message says it was seen by both.
func TestGroupChat(t *testing.T) {
	env := chatServer(t, nil)
	url := pageURL(t, env)
	var pages []*page
	for _, name := range []string{"alice", "bob", "carol"} {
		p := newUser(t, name).open(url, desktopW, desktopH)
		p.login()
		pages = append(pages, p)
	}
	a, b, c := pages[0], pages[1], pages[2]

	a.click("open the group form", ".new-group summary")
	a.do("fill it in and press Enter",
		sendKeys("new-group-title", "Team"), sendKeys("new-group-members", "bob, carol"), pressEnter)
	a.waitFor("the group open", `document.getElementById("chat-title").textContent === "Team" && !document.getElementById("composer").hidden`)
	var formOpen bool
	a.eval(`document.querySelector(".new-group").open`, &formOpen)
	if formOpen {
		t.Error("the group form stays open after the group was created")
	}
	var conv, members string
	a.eval(`document.querySelector('#convs li[aria-current="true"]').dataset.conv`, &conv)
	a.eval(`document.getElementById("chat-members").textContent`, &members)
	if got := strings.Split(members, ", "); !slices.Equal(sortedCopy(got), []string{"alice", "bob", "carol"}) {
		t.Errorf("alice's page lists the members as %q", members)
	}
	b.openChat(conv)
	c.openChat(conv)

	a.write("welcome to the team")
	b.waitMessage("welcome to the team")
	c.waitMessage("welcome to the team")
	a.waitFor("seen by bob and carol", seenByJS+`.split(",").sort().join(",") === "bob,carol"`)
	b.write("thanks!")
	c.write("hello all")
	for _, p := range pages {
		p.waitMessage("thanks!")
		p.waitMessage("hello all")
	}
	a.screenshot("group-alice")
	want := stored(t, env, "carol", conv)
	if len(want) != 3 {
		t.Fatalf("store holds %d messages, want 3", len(want))
	}
	for _, p := range pages {
		sameAsStore(t, p, want)
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
