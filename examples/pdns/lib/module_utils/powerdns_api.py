# -*- coding: utf-8 -*-
# The PowerDNS HTTP API for the modules of hive's pdns example
# (powerdns_zone, powerdns_record), with Python's standard library only.

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request


class PowerDNSError(Exception):
    pass


def api_options():
    """The options every module of the API takes: server (the API's server
    id, localhost), pdns_host (127.0.0.1), pdns_port (8081), pdns_prot
    (http or https), pdns_api_key (X-API-Key), strict_ssl_checking (verify
    the API's certificate)."""
    return dict(
        server=dict(type='str', default='localhost'),
        pdns_host=dict(type='str', default='127.0.0.1'),
        pdns_port=dict(type='int', default=8081),
        pdns_prot=dict(type='str', default='http', choices=['http', 'https']),
        pdns_api_key=dict(type='str', no_log=True),
        strict_ssl_checking=dict(type='bool', default=True),
    )


def canonical(name):
    return name if name.endswith('.') else name + '.'


class PowerDNS:
    def __init__(self, params):
        self.base = '%s://%s:%s/api/v1/servers/%s' % (
            params['pdns_prot'], params['pdns_host'], params['pdns_port'],
            urllib.parse.quote(params['server']))
        self.key = params['pdns_api_key'] or ''
        self.context = None
        if params['pdns_prot'] == 'https' and not params['strict_ssl_checking']:
            self.context = ssl._create_unverified_context()

    def zones_path(self):
        return '/zones'

    def zone_path(self, name):
        return '/zones/' + urllib.parse.quote(canonical(name))

    def call(self, method, path, body=None):
        """The answer's JSON (None when empty); raises PowerDNSError."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header('X-API-Key', self.key)
        req.add_header('Accept', 'application/json')
        if data is not None:
            req.add_header('Content-Type', 'application/json')
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.context) as r:
                text = r.read()
        except urllib.error.HTTPError as e:
            raise HTTPError(e.code, message(e.read()))
        except (urllib.error.URLError, OSError) as e:
            raise PowerDNSError('%s %s: %s' % (method, self.base + path, e))
        return json.loads(text) if text else None

    def zone(self, name):
        """The zone with its record sets, or None when it does not exist."""
        try:
            return self.call('GET', self.zone_path(name))
        except HTTPError as e:
            if e.status in (404, 422):
                return None
            raise


class HTTPError(PowerDNSError):
    def __init__(self, status, text):
        super().__init__('HTTP %d: %s' % (status, text))
        self.status = status


def message(body):
    try:
        answer = json.loads(body)
        return answer.get('error') or answer.get('errors') or body.decode(errors='replace')
    except (ValueError, AttributeError):
        return body.decode(errors='replace')
