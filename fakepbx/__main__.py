"""`python -m fakepbx --port 5038 [--flavour asterisk22] [--devices PJSIP/104,PJSIP/105]`: the
simulated Asterisk on its own, without the dashboard or a database."""

from .cli import main

main()
