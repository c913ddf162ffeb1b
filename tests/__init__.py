"""The test suite. It mirrors the package (api/, transport/, ...); e2e/ holds the real servers, the browser
and the notebooks; support/ the helpers; servers/ the servers the tests talk HTTP to."""
