package auth_test

import (
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/duplexhq/duplex/auth"
)

func Example() {
	secret := []byte("a-secret-of-at-least-thirty-two-bytes")
	a, err := auth.New(auth.Config{Secret: secret, AdminKey: "k3y"})
	if err != nil {
		panic(err)
	}
	tok, err := auth.Mint(secret, "alice", time.Hour, time.Now())
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest("GET", "/ws?access_token="+tok, nil)
	p, err := a.Authenticate(r)
	fmt.Println(p.UserID, p.Admin, err)
	// Output: alice false <nil>
}
