# Copyright (c) the hive authors. MIT license.
# A connection plugin written by hive for the tasks it hands to
# ansible-playbook: commands run in a container with `docker exec`, files
# travel through the command's standard input and output, and the engine is
# the one of `hive_docker_host` (a socket hive forwarded from the server
# running the container) or else the local one. Only the Docker command line
# is needed, no collection.
from __future__ import annotations

DOCUMENTATION = '''
name: hive_docker
short_description: run tasks in a container through the docker command line
description:
  - Runs commands with docker exec; copies files through its standard streams.
author: hive
options:
  remote_addr:
    description: The container (name or id).
    vars:
      - name: inventory_hostname
      - name: ansible_host
  docker_host:
    description: DOCKER_HOST of the engine running the container.
    default: ''
    vars:
      - name: hive_docker_host
'''

import shlex
import subprocess

from ansible.errors import AnsibleError
from ansible.plugins.connection import ConnectionBase


class Connection(ConnectionBase):
    transport = 'hive_docker'
    has_pipelining = True

    def _container(self):
        return self.get_option('remote_addr') or self._play_context.remote_addr

    def _docker(self, args, data=None):
        cmd = ['docker']
        host = self.get_option('docker_host')
        if host:
            cmd += ['-H', host]
        cmd += args
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        out, err = proc.communicate(data)
        return proc.returncode, out, err

    def _connect(self):
        self._connected = True
        return self

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        return self._docker(['exec', '-i', self._container(), '/bin/sh', '-c', cmd], in_data)

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        with open(in_path, 'rb') as f:
            data = f.read()
        rc, _, err = self._docker(
            ['exec', '-i', self._container(), '/bin/sh', '-c', 'cat > ' + shlex.quote(out_path)],
            data)
        if rc != 0:
            raise AnsibleError('cannot put %s in %s: %s' % (out_path, self._container(), err))

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        rc, out, err = self._docker(['exec', self._container(), 'cat', in_path])
        if rc != 0:
            raise AnsibleError('cannot fetch %s from %s: %s' % (in_path, self._container(), err))
        with open(out_path, 'wb') as f:
            f.write(out)

    def close(self):
        self._connected = False
