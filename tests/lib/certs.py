"""A fresh CA and server certificate per run, plus the broken variants tests ask for, and client
certificates for x509 client-certificate authentication (kube-apiserver --client-ca-file)."""
import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_MODES = ("good", "unknown-ca", "wrong-san", "expired", "not-yet-valid")
DAY = datetime.timedelta(days=1)


def _name(common_name, organizations=()):
    """CN first, then one O per group, as kubeadm-style client certificates are laid out."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
                     + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations])


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _ca(common_name, now):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + 365 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def new_ca(common_name):
    """(CA key, CA certificate) of a fresh self-signed CA."""
    return _ca(common_name, datetime.datetime.now(datetime.timezone.utc))


def client(ca_key, ca_cert, common_name, organizations=()):
    """(certificate PEM, key PEM) of a client certificate (ExtKeyUsage clientAuth) signed by the CA.
    kube's x509 authenticator makes CN the user name and each O a group."""
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(common_name, organizations))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + 365 * DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return pem(cert), _key_pem(key)


def make(mode):
    """Returns (trusted CA PEM, CA PEM that signed the served cert, server cert PEM, server key PEM,
    (signer CA key, signer CA certificate)); the last one signs client certificates."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, ca_cert = _ca("pam-k8stoken test CA", now)
    signer_key, signer_cert = (_ca("unknown test CA", now) if mode == "unknown-ca" else (ca_key, ca_cert))
    not_before, not_after = now - DAY, now + 365 * DAY
    if mode == "expired":
        not_before, not_after = now - 10 * DAY, now - DAY
    elif mode == "not-yet-valid":
        not_before, not_after = now + DAY, now + 10 * DAY
    names = ([x509.DNSName("wrong.example.invalid")] if mode == "wrong-san"
             else [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("kube-apiserver")).issuer_name(signer_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(signer_key, hashes.SHA256()))
    return pem(ca_cert), pem(signer_cert), pem(cert), _key_pem(key), (signer_key, signer_cert)
