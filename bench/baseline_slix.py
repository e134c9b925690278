#!/usr/bin/python3
"""Baseline peer: the same minimal gateway agent written with slixmpp (what a
Python user would write): log in, presence with a status, answer ping and
version.  usage: baseline_slix.py JID PASSWORD HOST PORT CAFILE"""
import asyncio
import signal
import sys

import slixmpp

jid, password, host, port, cafile = sys.argv[1:6]
xmpp = slixmpp.ClientXMPP(jid + '/baseline', password)
xmpp.ca_certs = cafile
xmpp.register_plugin('xep_0199')  # answers pings
xmpp.register_plugin('xep_0092', {'software_name': 'baseline', 'version': '1'})


def online(_event):
    xmpp.send_presence(pstatus='temperature 21.4 °C · fan off')
    print('online', flush=True)


xmpp.add_event_handler('session_start', online)
loop = asyncio.get_event_loop()
loop.add_signal_handler(signal.SIGTERM, xmpp.disconnect)
xmpp.connect((host, int(port)))
loop.run_until_complete(xmpp.disconnected)
