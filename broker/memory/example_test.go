package memory_test

import (
	"context"
	"fmt"

	"github.com/duplexhq/duplex/broker/memory"
)

func Example() {
	b := memory.New(memory.Options{})
	defer b.Close()

	got := make(chan string, 1)
	cancel, err := b.Subscribe("conv.c_1", func(subject string, data []byte) {
		got <- subject + " " + string(data) // copy: data is only valid during the call
	})
	if err != nil {
		panic(err)
	}
	defer cancel()

	if err := b.Publish(context.Background(), "conv.c_1", []byte(`{"seq":1}`)); err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	// Output: conv.c_1 {"seq":1}
}
