module github.com/leeward-sandbox/leeward/bindings/go

go 1.19
