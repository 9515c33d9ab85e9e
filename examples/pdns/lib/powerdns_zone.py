#!/usr/bin/python3
# -*- coding: utf-8 -*-
# A module of hive's pdns example: a PowerDNS zone through the PowerDNS HTTP
# API (what the guide's powerdns_zone, Nosmoht/ansible-module-powerdns,
# does), with Python's standard library only.

DOCUMENTATION = '''
---
module: powerdns_zone
short_description: Manage PowerDNS zones
description:
  - Create or delete a PowerDNS zone using the HTTP API.
options:
  name:
    description: Zone name (a trailing dot is added when missing).
    required: true
  kind:
    description: Zone kind.
    default: master
    choices: [native, master, slave]
  nameservers:
    description: Name servers of a new zone.
  masters:
    description: Masters of a slave zone.
  state:
    description: Whether the zone exists.
    default: present
    choices: [present, absent]
  server, pdns_host, pdns_port, pdns_prot, pdns_api_key, strict_ssl_checking:
    description: How to reach the API (module_utils/powerdns_api.py).
author: hive
'''

EXAMPLES = '''
- powerdns_zone:
    name: pdns.example.com.
    kind: native
    nameservers: [p-hive0.example.com.]
    pdns_api_key: secret
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.powerdns_api import PowerDNS, PowerDNSError, api_options, canonical


def main():
    spec = dict(
        name=dict(type='str', required=True),
        kind=dict(type='str', default='master', choices=['native', 'master', 'slave']),
        nameservers=dict(type='list', elements='str', default=[]),
        masters=dict(type='list', elements='str', default=[]),
        state=dict(type='str', default='present', choices=['present', 'absent']),
    )
    spec.update(api_options())
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    api = PowerDNS(p)
    name = canonical(p['name'])
    try:
        zone = api.zone(name)
        if p['state'] == 'absent':
            if zone is None:
                module.exit_json(changed=False)
            if not module.check_mode:
                api.call('DELETE', api.zone_path(name))
            module.exit_json(changed=True)
        if zone is not None:
            module.exit_json(changed=False, zone=summary(zone))
        if module.check_mode:
            module.exit_json(changed=True)
        body = dict(name=name, kind=p['kind'].capitalize(),
                    nameservers=[canonical(n) for n in p['nameservers']])
        if p['kind'] == 'slave':
            body['masters'] = p['masters']
        api.call('POST', api.zones_path(), body)
        module.exit_json(changed=True, zone=summary(api.zone(name)))
    except PowerDNSError as e:
        module.fail_json(msg='zone %s: %s' % (name, e))


def summary(zone):
    return dict(name=zone.get('name'), kind=zone.get('kind'), serial=zone.get('serial'))


if __name__ == '__main__':
    main()
