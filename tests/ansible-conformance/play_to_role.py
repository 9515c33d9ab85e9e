#!/usr/bin/env python3
"""Turns one play of an ansible-core integration playbook into a role.

    play_to_role.py PLAYBOOK INDEX ROLE_DIR

The play's pre_tasks, roles (as import_role tasks with their parameters as
vars), tasks and post_tasks become tasks/main.yml in that order (with a
`meta: flush_handlers` where the play flushes handlers), its
handlers handlers/main.yml, its vars and vars_files vars/main.yml. The
tasks are copied as written; only the play around them changes. Files the
tasks name relative to the playbook (files/, templates/, tasks/, vars/)
are linked into the role, where a role looks for them.
"""
import os
import sys

import yaml


class Loader(yaml.SafeLoader):
    pass


def keep_tag(loader, suffix, node):
    # !unsafe and other Ansible tags: kept, so the role reads as the play did
    value = loader.construct_scalar(node)
    return Tagged(suffix, value)


class Tagged(str):
    def __new__(cls, tag, value):
        s = str.__new__(cls, value)
        s.tag = tag
        return s


Loader.add_multi_constructor('!', keep_tag)


class Dumper(yaml.SafeDumper):
    pass


Dumper.add_representer(
    Tagged, lambda d, v: d.represent_scalar('!' + v.tag, str(v)))


def dump(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        yaml.dump(data, f, Dumper=Dumper, default_flow_style=False,
                  sort_keys=False, allow_unicode=True, width=1000)


def main():
    playbook, index, role = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    base = os.path.dirname(os.path.abspath(playbook))
    with open(playbook) as f:
        play = yaml.load(f, Loader=Loader)[index]
    tasks = list(play.get('pre_tasks') or [])
    if play.get('pre_tasks'):
        tasks.append({'meta': 'flush_handlers'})
    for r in play.get('roles') or []:
        if isinstance(r, str):
            r = {'role': r}
        r = dict(r)
        name = r.pop('role', None) or r.pop('name')
        task = {'import_role': {'name': name}}
        params = dict(r.pop('vars', {}) or {})
        params.update(r)
        if params:
            task['vars'] = params
        tasks.append(task)
    # handlers run where the play flushes them: after pre_tasks, after
    # roles and tasks, and at the end
    tasks += play.get('tasks') or []
    if play.get('post_tasks'):
        tasks.append({'meta': 'flush_handlers'})
        tasks += play['post_tasks']
    dump(os.path.join(role, 'tasks', 'main.yml'), tasks)
    if play.get('handlers'):
        dump(os.path.join(role, 'handlers', 'main.yml'), play['handlers'])
    variables = {}
    for vf in play.get('vars_files') or []:
        with open(os.path.join(base, vf)) as f:
            variables.update(yaml.load(f, Loader=Loader) or {})
    variables.update(play.get('vars') or {})
    if variables:
        dump(os.path.join(role, 'vars', 'main.yml'), variables)
    for sub in ('files', 'templates'):
        if os.path.isdir(os.path.join(base, sub)):
            os.symlink(os.path.join(base, sub), os.path.join(role, sub))
    for entry in os.listdir(base):
        src = os.path.join(base, entry)
        dst = os.path.join(role, 'tasks', entry)
        if entry.endswith(('.yml', '.yaml')) and entry != os.path.basename(playbook) \
                and not os.path.exists(dst):
            os.symlink(src, dst)


if __name__ == '__main__':
    main()
