"""The test suite: unit tests with fakes of our own ports, integration tests against the real
services (marked ``integration``)."""
