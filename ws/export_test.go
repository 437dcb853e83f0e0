package ws

// CheckInflate lets the black-box tests (package ws_test) use the test
// inflater that checks back-reference distances against a window, instead
// of keeping a second DEFLATE parser of their own.
var CheckInflate = checkInflate
