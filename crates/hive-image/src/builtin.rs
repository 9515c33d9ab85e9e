//! hive's built-in roles (usable in `image.roles` without a role directory).

type Files = &'static [(&'static str, &'static str)];

const PYTHON_APTK: Files = &[(
    "tasks/main.yml",
    r#"# hive applies roles without Python in the container; this role still
# installs python3 for images whose services need it (and for the Ansible
# fallback), and trusts the proxy's CA when one is configured.
- name: trust the proxy CA
  when: hive_http_proxy is defined
  block:
    - name: put the CA certificate
      copy:
        src: "{{ hive_context_dir }}/ca/cacert.pem"
        dest: /etc/ssl/certs/cacert.pem
        mode: "0644"
    - name: add it to the system trust store
      raw: >-
        if [ -x /usr/sbin/update-ca-certificates ]; then /usr/sbin/update-ca-certificates;
        else cat /etc/ssl/certs/cacert.pem >> /etc/ssl/certs/ca-certificates.crt; fi
- name: install python3 when missing
  raw: >-
    command -v python3 >/dev/null 2>&1 && exit 0;
    if command -v apt-get >/dev/null 2>&1; then apt-get update -q && apt-get install -y -q python3;
    elif command -v apk >/dev/null 2>&1; then apk add --no-cache python3;
    else yum install -y python3; fi
  changed_when: false
"#,
)];

const HIVE_SYSLOG: Files = &[
    (
        "tasks/main.yml",
        r#"# Forward the system log of a standalone container to the repository
# server's syslog collector.
- name: install rsyslog
  package:
    name: rsyslog
    state: present
- name: configure forwarding
  template:
    src: forward.conf.j2
    dest: /etc/rsyslog.conf
    mode: "0644"
- name: start rsyslog at boot
  shell: systemctl enable rsyslog
  args:
    creates: /etc/systemd/system/multi-user.target.wants/rsyslog.service
"#,
    ),
    (
        "templates/forward.conf.j2",
        r#"# rsyslog configuration written by hive (hive-syslog role)
module(load="imuxsock")
module(load="imjournal" StateFile="imjournal.state")
$WorkDirectory /var/lib/rsyslog
$ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat
$IncludeConfig /etc/rsyslog.d/*.conf
$OmitLocalLogging on
$IMJournalStateFile imjournal.state
{% set repo = hostvars[groups['repository'] | intersect(groups[hive_stage]) | first] %}
# everything informational and above, except mail, auth and cron, goes to
# the repository server
*.info;mail.none;authpriv.none;cron.none @{{ repo.hive_private_ip }}:{{ repo.hive_safe_syslog_port }}
"#,
    ),
];

const HIVE_CERTIFICATE: Files = &[
    (
        "tasks/main.yml",
        r#"# Issue a server/client certificate from the stage's CA on the mother
# machine and install it in the image. Each item of `certificates` has
# certificate_fqdn, sub_prefix, ca_valid_in, cert_dest and key_dest.
- name: write the certificate extensions
  delegate_to: localhost
  become: false
  copy:
    src: extfile.cnf
    dest: "{{ hive_safe_ca_dir }}/{{ item.certificate_fqdn }}-extfile.cnf"
  loop: "{{ certificates }}"
- name: make a key and signing request
  delegate_to: localhost
  become: false
  command: >-
    openssl req -batch -new -newkey rsa:4096 -nodes -sha256
    -subj "{{ item.sub_prefix }}/CN={{ item.certificate_fqdn }}"
    -keyout {{ hive_safe_ca_dir }}/{{ item.certificate_fqdn }}-key.pem
    -out {{ hive_safe_ca_dir }}/{{ item.certificate_fqdn }}.csr
  args:
    creates: "{{ hive_safe_ca_dir }}/{{ item.certificate_fqdn }}.csr"
  loop: "{{ certificates }}"
- name: sign the request with the CA
  delegate_to: localhost
  become: false
  command: >-
    openssl x509 -req -days {{ item.ca_valid_in }} -sha256
    -in {{ hive_safe_ca_dir }}/{{ item.certificate_fqdn }}.csr
    -CA {{ hive_safe_ca_dir }}/cacert.pem -CAkey {{ hive_safe_ca_dir }}/cakey.pem
    -out {{ hive_safe_ca_dir }}/{{ item.certificate_fqdn }}-server-cert.pem
    -extfile {{ hive_safe_ca_dir }}/{{ item.certificate_fqdn }}-extfile.cnf
  args:
    creates: "{{ hive_safe_ca_dir }}/{{ item.certificate_fqdn }}-server-cert.pem"
  loop: "{{ certificates }}"
- name: install the certificate
  copy:
    src: "{{ hive_safe_ca_dir }}/{{ item.certificate_fqdn }}-server-cert.pem"
    dest: "{{ item.cert_dest }}"
  loop: "{{ certificates }}"
- name: install the key
  copy:
    src: "{{ hive_safe_ca_dir }}/{{ item.certificate_fqdn }}-key.pem"
    dest: "{{ item.key_dest }}"
    mode: "0600"
  loop: "{{ certificates }}"
"#,
    ),
    (
        "files/extfile.cnf",
        "extendedKeyUsage = clientAuth,serverAuth\n",
    ),
];

const HIVE_TRUST_CA: Files = &[
    (
        "tasks/main.yml",
        r#"# Make the image trust the stage's CA, whatever its distribution.
- name: look for the distribution's release files
  stat:
    path: "{{ item }}"
  loop: [/etc/alpine-release, /etc/redhat-release, /etc/debian_version]
  register: hive_trust_ca_release
- name: trust the CA (alpine)
  include_tasks: alpine.yml
  when: hive_trust_ca_release.results[0].stat.exists
- name: trust the CA (centos)
  include_tasks: centos.yml
  when: hive_trust_ca_release.results[1].stat.exists
- name: trust the CA (debian, ubuntu)
  include_tasks: debian.yml
  when: hive_trust_ca_release.results[2].stat.exists
"#,
    ),
    (
        "tasks/alpine.yml",
        r#"- name: put the CA certificate
  copy:
    src: "{{ hive_safe_ca_dir }}/cacert.pem"
    dest: /etc/ssl/certs/cacert.pem
    owner: root
    group: root
    mode: "0644"
  register: hive_trust_ca_copy
- name: rebuild the trust store
  raw: >-
    if [ -x /usr/sbin/update-ca-certificates ]; then /usr/sbin/update-ca-certificates;
    else cat /etc/ssl/certs/cacert.pem >> /etc/ssl/certs/ca-certificates.crt; fi
  when: hive_trust_ca_copy.changed
- name: let pip find the CA
  file:
    src: /etc/ssl/certs/cacert.pem
    dest: /etc/cacert_pip.pem
    state: link
"#,
    ),
    (
        "tasks/centos.yml",
        r#"- name: put the CA certificate
  copy:
    src: "{{ hive_safe_ca_dir }}/cacert.pem"
    dest: /etc/pki/ca-trust/source/anchors/cacert.pem
    owner: root
    group: root
    mode: "0644"
  register: hive_trust_ca_copy
- name: rebuild the trust store
  command: update-ca-trust extract
  when: hive_trust_ca_copy.changed
- name: let pip find the CA
  file:
    src: /etc/pki/ca-trust/source/anchors/cacert.pem
    dest: /etc/cacert_pip.pem
    state: link
"#,
    ),
    (
        "tasks/debian.yml",
        r#"- name: install ca-certificates
  apt:
    name: ca-certificates
    update_cache: true
- name: put the CA certificate
  copy:
    src: "{{ hive_safe_ca_dir }}/cacert.pem"
    dest: /usr/local/share/ca-certificates/hive-cacert.crt
    owner: root
    group: root
    mode: "0644"
  register: hive_trust_ca_copy
- name: rebuild the trust store
  command: update-ca-certificates
  when: hive_trust_ca_copy.changed
- name: let pip find the CA
  file:
    src: /usr/local/share/ca-certificates/hive-cacert.crt
    dest: /etc/cacert_pip.pem
    state: link
"#,
    ),
    (
        "vars/main.yml",
        "hive_safe_ca_dir: \"{{ hive_context_dir }}/ca\"\n",
    ),
];

/// The files of built-in role `name`.
pub fn role(name: &str) -> Option<Files> {
    match name {
        "python-aptk" => Some(PYTHON_APTK),
        "hive-syslog" => Some(HIVE_SYSLOG),
        "hive-certificate" => Some(HIVE_CERTIFICATE),
        "hive-trust-ca" => Some(HIVE_TRUST_CA),
        _ => None,
    }
}

/// Names of the built-in roles.
pub const BUILTIN_ROLES: &[&str] = &[
    "python-aptk",
    "hive-syslog",
    "hive-certificate",
    "hive-trust-ca",
];
