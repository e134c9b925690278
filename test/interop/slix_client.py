#!/usr/bin/python3
"""A slixmpp 1.8 client driving the agent through its IoT XEPs, as a Python
user would. Prints one JSON object per step on stdout.

usage: /usr/bin/python3 slix_client.py JID PASSWORD HOST PORT CAFILE TARGET owner|stranger
"""
import asyncio
import json
import logging
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

jid, password, host, port, cafile, target, role = sys.argv[1:8]
logging.basicConfig(level=logging.ERROR)

xmpp = slixmpp.ClientXMPP(jid, password)
xmpp.ca_certs = cafile
for plugin in ('xep_0030', 'xep_0004', 'xep_0050', 'xep_0323', 'xep_0325'):
    xmpp.register_plugin(plugin)


def out(step, **data):
    print(json.dumps({'step': step, **data}), flush=True)


async def readout(**kw):
    """XEP-0323 through the plugin: collect every callback until done/rejected/failure."""
    loop = asyncio.get_event_loop()
    finished = loop.create_future()
    events = []

    def callback(from_jid, result, nodeId=None, timestamp=None, fields=None, error_msg=None):
        events.append({'result': result, 'node': nodeId, 'fields': fields, 'error': error_msg})
        if result in ('done', 'rejected', 'failure') and not finished.done():
            finished.set_result(result)

    xmpp['xep_0323'].request_data(xmpp.boundjid, target, callback, **kw)
    try:
        await asyncio.wait_for(finished, 10)
    except asyncio.TimeoutError:
        events.append({'result': 'timeout'})
    return events


async def control(fields):
    loop = asyncio.get_event_loop()
    finished = loop.create_future()

    def callback(from_jid, result, nodeIds=None, fields=None, error_msg=None):
        if not finished.done():
            finished.set_result(result)

    xmpp['xep_0325'].set_request(xmpp.boundjid, target, callback, fields=fields)
    try:
        return await asyncio.wait_for(finished, 10)
    except asyncio.TimeoutError:
        return 'timeout'


async def raw_iq(kind, payload):
    """Send a raw IQ and report the error condition (for refusals)."""
    iq = xmpp.Iq()
    iq['type'] = kind
    iq['to'] = target
    iq.append(ET.fromstring(payload))
    try:
        await iq.send(timeout=10)
        return 'result'
    except IqError as err:
        return err.iq['error']['condition']
    except IqTimeout:
        return 'timeout'


async def owner_steps():
    out('sensor_all', events=await readout(flags={'momentary': 'true'}))
    out('sensor_filtered', events=await readout(nodeIds=['fan'], fields=['fan'], flags={'momentary': 'true'}))
    out('sensor_unknown', events=await readout(nodeIds=['nope'], flags={'momentary': 'true'}))

    out('control_ok', code=await control([('fan', 'boolean', 'true'), ('setpoint', 'double', '22.5')]))
    out('control_bad', code=await control([('setpoint', 'double', '99')]))
    out('control_unknown', code=await control([('pump', 'boolean', 'true')]))
    xmpp['xep_0325'].set_command(xmpp.boundjid, target, fields=[('mode', 'string', 'slix')])
    await asyncio.sleep(0.5)
    out('control_message')

    items = await xmpp['xep_0050'].get_commands(jid=target)
    out('commands', names=[name for (_jid, _node, name) in items['disco_items']['items']])

    read = await xmpp['xep_0050'].send_command(target, 'read-sensors')
    out('command_read', status=read['command']['status'], values=read['command']['form']['values'])

    first = await xmpp['xep_0050'].send_command(target, 'set-device')
    sessionid = first['command']['sessionid']
    pick = xmpp['xep_0004'].make_form('submit')
    pick.add_field(var='device', value='fan')
    second = await xmpp['xep_0050'].send_command(target, 'set-device', action='next', payload=pick, sessionid=sessionid)
    value_type = second['command']['form'].get_fields()['value']['type']
    answer = xmpp['xep_0004'].make_form('submit')
    answer.add_field(var='device', value='fan')
    answer.add_field(var='value', value='0')
    done = await xmpp['xep_0050'].send_command(target, 'set-device', action='complete', payload=answer, sessionid=sessionid)
    out('command_set', first=first['command']['status'], value_type=value_type, status=done['command']['status'],
        notes=[n[1] for n in done['command']['notes']])

    start = await xmpp['xep_0050'].send_command(target, 'set-device')
    cancelled = await xmpp['xep_0050'].send_command(target, 'set-device', action='cancel', sessionid=start['command']['sessionid'])
    out('command_cancel', status=cancelled['command']['status'])


async def stranger_steps():
    out('sensor_refused', condition=await raw_iq('get', '<req xmlns="urn:xmpp:iot:sensordata" seqnr="1" momentary="true"/>'))
    out('control_refused', condition=await raw_iq('set', '<set xmlns="urn:xmpp:iot:control"><boolean name="fan" value="true"/></set>'))
    xmpp['xep_0325'].set_command(xmpp.boundjid, target, fields=[('fan', 'boolean', 'true')])
    try:
        await xmpp['xep_0050'].send_command(target, 'set-device')
        out('command_refused', condition='result')
    except IqError as err:
        out('command_refused', condition=err.iq['error']['condition'])


async def session_start(_event):
    xmpp.send_presence()
    try:
        await (owner_steps() if role == 'owner' else stranger_steps())
    except Exception as err:  # report, never hang the test
        out('crash', error=repr(err))
    out('end')
    xmpp.disconnect()


xmpp.add_event_handler('session_start', session_start)
xmpp.add_event_handler('failed_auth', lambda _e: (out('auth_failed'), xmpp.disconnect()))
xmpp.connect((host, int(port)))
asyncio.get_event_loop().run_until_complete(xmpp.disconnected)
