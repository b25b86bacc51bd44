from atomic_reactor.cli.main import run

run()
