module github.com/duplexhq/duplex

go 1.26
