#!/usr/bin/python3
# -*- coding: utf-8 -*-
# A module of hive's pdns example: a PowerDNS record set (name and type)
# through the PowerDNS HTTP API (what the guide's powerdns_record,
# Nosmoht/ansible-module-powerdns, does), with Python's standard library only.

DOCUMENTATION = '''
---
module: powerdns_record
short_description: Manage PowerDNS records
description:
  - Create, update or delete a PowerDNS record set using the HTTP API.
  - A record set is identified by its name and type.
options:
  name:
    description: Record name; the zone is appended when it is not in it.
    required: true
  zone:
    description: The zone of the record.
    required: true
  type:
    description: Record type.
    choices: [A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT, LUA]
    required: true
  content:
    description: Content of the record.
  ttl:
    description: TTL of the record set.
    default: 86400
  exclusive:
    description: Replace every other content of the record set.
    default: true
  disabled:
    description: Whether the record is disabled.
    default: false
  state: {description: Whether the record exists., default: present, choices: [present, absent]}
  server, pdns_host, pdns_port, pdns_prot, pdns_api_key, strict_ssl_checking:
    description: How to reach the API (module_utils/powerdns_api.py).
author: hive
'''

EXAMPLES = '''
- powerdns_record:
    name: www.pdns.example.com.
    zone: pdns.example.com
    type: LUA
    content: A "ifportup(80, {'192.0.2.1', '192.0.2.2'})"
    ttl: 20
    pdns_api_key: secret
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.powerdns_api import PowerDNS, PowerDNSError, api_options, canonical

TYPES = ['A', 'AAAA', 'CNAME', 'MX', 'NS', 'PTR', 'SOA', 'SRV', 'TXT', 'LUA']


def main():
    spec = dict(
        name=dict(type='str', required=True),
        zone=dict(type='str', required=True),
        type=dict(type='str', required=True, choices=TYPES),
        content=dict(type='str'),
        ttl=dict(type='int', default=86400),
        exclusive=dict(type='bool', default=True),
        disabled=dict(type='bool', default=False),
        state=dict(type='str', default='present', choices=['present', 'absent']),
    )
    spec.update(api_options())
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[('state', 'present', ['content'])])
    p = module.params
    api = PowerDNS(p)
    zone = canonical(p['zone'])
    name = canonical(p['name'])
    if not (name == zone or name.endswith('.' + zone)):
        name = canonical(p['name'].rstrip('.') + '.' + zone)
    rtype = p['type']
    content = p['content']
    if content is not None and rtype == 'TXT' and not content.startswith('"'):
        content = '"%s"' % content
    try:
        zone_data = api.zone(zone)
        if zone_data is None:
            module.fail_json(msg='zone %s does not exist' % zone)
        current = None
        for rrset in zone_data.get('rrsets', []):
            if rrset['name'] == name and rrset['type'] == rtype:
                current = rrset
        existing = [r['content'] for r in current['records']] if current else []
        if p['state'] == 'absent':
            if not current:
                module.exit_json(changed=False)
            if p['exclusive'] or existing == [content]:
                change = dict(name=name, type=rtype, changetype='DELETE')
            elif content in existing:
                change = replace(name, rtype, current['ttl'],
                                 [c for c in existing if c != content], p['disabled'])
            else:
                module.exit_json(changed=False)
        else:
            wanted = [content] if p['exclusive'] else existing + [c for c in [content] if c not in existing]
            same = (current is not None and sorted(existing) == sorted(wanted)
                    and current['ttl'] == p['ttl']
                    and all(r['disabled'] == p['disabled'] for r in current['records']))
            if same:
                module.exit_json(changed=False, record=current)
            change = replace(name, rtype, p['ttl'], wanted, p['disabled'])
        if not module.check_mode:
            api.call('PATCH', api.zone_path(zone), dict(rrsets=[change]))
        module.exit_json(changed=True, record=change)
    except PowerDNSError as e:
        module.fail_json(msg='record %s %s: %s' % (name, rtype, e))


def replace(name, rtype, ttl, contents, disabled):
    return dict(name=name, type=rtype, ttl=ttl, changetype='REPLACE',
                records=[dict(content=c, disabled=disabled) for c in contents])


if __name__ == '__main__':
    main()
