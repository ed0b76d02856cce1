// Command apiserver runs a real Kubernetes control plane (etcd,
// kube-apiserver and, unless --no-controller-manager, kube-controller-manager)
// inside one process on loopback, for the operator's integration tests.
//
//	apiserver [--dir DIR] [--pid-file FILE] [--log-file FILE]   start; prints KUBECONFIG=<path>, then READY
//	apiserver stop --pid-file FILE                              send SIGTERM and wait for the exit
//	apiserver kubectl ARGS...                                   kubectl (k8s.io/kubectl, same release)
//	apiserver helm ARGS...                                      helm (helm.sh/helm/v4)
//
// Everything it writes (etcd data, certificates, kubeconfig) lives in the
// working directory, which it removes on SIGTERM/SIGINT. There is no
// scheduler and no kubelet: Pods are created (by StatefulSets etc.) but stay
// Pending.
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/embed"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
)

// settings are the command-line flags of the start command.
type settings struct {
	dir                   string // working directory; created if missing, removed at exit
	pidFile               string
	logFile               string // control-plane logs; stderr when empty
	noControllerManager   bool
	serviceClusterIPRange string
}

// errOut is where the program's own messages go: stderr, even when
// --log-file redirects the components' logs.
var errOut = os.Stderr

func main() {
	runTool()
	if len(os.Args) > 1 && os.Args[1] == "stop" {
		if err := stopCommand(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "apiserver stop:", err)
			os.Exit(1)
		}
		return
	}
	var s settings
	flag.StringVar(&s.dir, "dir", "", "working directory (created if missing, removed at exit); default: a new temp dir")
	flag.StringVar(&s.pidFile, "pid-file", "", "write this process's pid here (removed at exit)")
	flag.StringVar(&s.logFile, "log-file", "", "write etcd/apiserver/controller-manager logs here instead of stderr (kept at exit)")
	flag.BoolVar(&s.noControllerManager, "no-controller-manager", false, "run only etcd and kube-apiserver")
	flag.StringVar(&s.serviceClusterIPRange, "service-cluster-ip-range", "10.96.0.0/16", "ClusterIP range of Services")
	flag.Parse()
	if err := run(s); err != nil {
		fmt.Fprintln(errOut, "apiserver:", err)
		os.Exit(1)
	}
}

// run starts the control plane, prints KUBECONFIG=/READY, and blocks until
// SIGTERM/SIGINT; it then stops every part in reverse order and cleans up.
func run(s settings) error {
	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stopSignals()

	dir, err := prepareDir(s.dir)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if s.pidFile != "" {
		if err := os.WriteFile(s.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return err
		}
		defer os.Remove(s.pidFile)
	}
	if errOut, err = redirectLogs(s.logFile); err != nil {
		return err
	}
	pki, err := writePKI(filepath.Join(dir, "pki"))
	if err != nil {
		return err
	}

	etcd, etcdURL, err := startEtcd(filepath.Join(dir, "etcd"))
	if err != nil {
		return err
	}
	defer etcd.Close()

	apiCtx, stopAPI := context.WithCancel(context.Background())
	apiDone, host, err := startAPIServer(apiCtx, etcdURL, pki, s)
	if err != nil {
		stopAPI()
		return err
	}
	defer func() { stopAPI(); waitFor("kube-apiserver", apiDone, 30*time.Second) }()

	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, host, pki); err != nil {
		return err
	}
	fmt.Printf("KUBECONFIG=%s\n", kubeconfig)
	if err := waitReady(ctx, kubeconfig, apiDone); err != nil {
		return err
	}

	if !s.noControllerManager {
		kcmCtx, stopKCM := context.WithCancel(context.Background())
		kcmDone, err := startControllerManager(kcmCtx, kubeconfig, pki)
		if err != nil {
			stopKCM()
			return err
		}
		defer func() { stopKCM(); waitFor("kube-controller-manager", kcmDone, 15*time.Second) }()
		if err := waitDefaultServiceAccount(ctx, kubeconfig, kcmDone); err != nil {
			return err
		}
	}
	fmt.Println("READY")

	select {
	case <-ctx.Done():
		stopSignals() // a second signal now kills the process at once
		fmt.Fprintln(errOut, "apiserver: stopping")
		return nil
	case err := <-apiDone:
		return fmt.Errorf("kube-apiserver stopped: %v", err)
	}
}

// prepareDir creates the working directory: the one asked for, or a new
// temp dir. It refuses a non-empty directory, since it is removed at exit.
func prepareDir(dir string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", "vectron-apiserver-")
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return "", fmt.Errorf("--dir %s is not empty (it is removed at exit)", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return filepath.Abs(dir)
}

// redirectLogs points this process's stderr (klog, etcd's zap logger,
// panics) at a file, and returns a handle on the original stderr for the
// program's own error message.
func redirectLogs(path string) (*os.File, error) {
	if path == "" {
		return os.Stderr, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return os.Stderr, err
	}
	defer f.Close()
	orig, err := syscall.Dup(2)
	if err != nil {
		return os.Stderr, err
	}
	if err := syscall.Dup3(int(f.Fd()), 2, 0); err != nil {
		return os.Stderr, err
	}
	return os.NewFile(uintptr(orig), "stderr"), nil
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startEtcd runs a single-member etcd with plain HTTP on loopback and
// returns its client URL once it serves.
func startEtcd(dataDir string) (*embed.Etcd, string, error) {
	clientPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}

	cfg := embed.NewConfig()
	cfg.Name = "default"
	cfg.Dir = dataDir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "warn"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, clientURL.String(), nil
	case err := <-e.Err():
		e.Close()
		return nil, "", fmt.Errorf("etcd: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", errors.New("etcd: not ready after 60s")
	}
}

// startAPIServer runs kube-apiserver with the same options code as the real
// binary (cmd/kube-apiserver/app), on a loopback listener it opens itself. It
// returns a channel that gets Run's result, and the https URL.
func startAPIServer(ctx context.Context, etcdURL string, pki pkiFiles, s settings) (<-chan error, string, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	port := listener.Addr().(*net.TCPAddr).Port

	opts := apiserveroptions.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range opts.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + pki.dir,
		"--tls-cert-file=" + pki.servingCert,
		"--tls-private-key-file=" + pki.servingKey,
		"--client-ca-file=" + pki.caCert,
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.saKey,
		"--service-account-signing-key-file=" + pki.saKey,
		"--service-cluster-ip-range=" + s.serviceClusterIPRange,
		"--allow-privileged=true",
		"--profiling=false",
		// Endpoints may not hold a loopback address, so the "kubernetes"
		// Service gets no endpoints (nothing in-cluster could reach us anyway).
		"--endpoint-reconciler-type=none",
	}
	if err := fs.Parse(args); err != nil {
		listener.Close()
		return nil, "", err
	}
	opts.SecureServing.Listener = listener
	opts.SecureServing.BindPort = port
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	if err := opts.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, "", err
	}
	completed, err := opts.Complete(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return nil, "", fmt.Errorf("kube-apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	done := make(chan error, 1)
	go func() { done <- apiserverapp.Run(ctx, completed) }()
	return done, fmt.Sprintf("https://127.0.0.1:%d", port), nil
}

// startControllerManager runs kube-controller-manager (all default
// controllers: StatefulSet, ReplicaSet, garbage collector, namespace,
// service accounts, ...) against the apiserver, without leader election and
// without its own HTTPS port.
func startControllerManager(ctx context.Context, kubeconfig string, pki pkiFiles) (<-chan error, error) {
	opts, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return nil, err
	}
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	all, disabled, aliases := kcmapp.KnownControllers(), kcmapp.ControllersDisabledByDefault(), kcmapp.ControllerAliases()
	named := opts.Flags(all, disabled, aliases)
	opts.ParsedFlags = &named
	for _, f := range named.FlagSets {
		fs.AddFlagSet(f)
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--controllers=*",
		"--use-service-account-credentials=false",
		"--service-account-private-key-file=" + pki.saKey,
		"--root-ca-file=" + pki.caCert,
		"--cluster-signing-cert-file=" + pki.caCert,
		"--cluster-signing-key-file=" + pki.caKey,
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	config, err := opts.Config(ctx, all, disabled, aliases)
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager options: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- kcmapp.Run(ctx, config.Complete()) }()
	return done, nil
}

// waitReady polls /readyz with the admin credentials until it answers "ok",
// then waits for the "default" namespace.
func waitReady(ctx context.Context, kubeconfig string, apiDone <-chan error) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && strings.TrimSpace(string(body)) == "ok" {
			if _, err := client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err == nil {
				return nil
			}
		}
		if err := sleepOrFail(ctx, deadline, apiDone, "kube-apiserver /readyz"); err != nil {
			return err
		}
	}
}

// waitDefaultServiceAccount waits until the controller-manager created the
// "default" ServiceAccount in "default": Pods can be admitted from then on.
func waitDefaultServiceAccount(ctx context.Context, kubeconfig string, kcmDone <-chan error) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) {
			klog.Infof("waiting for ServiceAccount default/default: %v", err)
		}
		if err := sleepOrFail(ctx, deadline, kcmDone, "kube-controller-manager"); err != nil {
			return err
		}
	}
}

// sleepOrFail waits a little, or fails when the deadline passed, a signal
// came, or the component stopped.
func sleepOrFail(ctx context.Context, deadline time.Time, done <-chan error, what string) error {
	if time.Now().After(deadline) {
		return fmt.Errorf("%s: not ready in time", what)
	}
	select {
	case <-ctx.Done():
		return errors.New("interrupted before ready")
	case err := <-done:
		return fmt.Errorf("%s stopped: %v", what, err)
	case <-time.After(200 * time.Millisecond):
		return nil
	}
}

// waitFor waits for a component's Run to return after its context was
// cancelled, logging instead of blocking forever.
func waitFor(name string, done <-chan error, timeout time.Duration) {
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			klog.Warningf("%s stopped with: %v", name, err)
		}
	case <-time.After(timeout):
		klog.Warningf("%s did not stop within %s", name, timeout)
	}
}

// pkiFiles are the paths of the generated keys and certificates.
type pkiFiles struct {
	dir                     string
	caCert, caKey           string
	servingCert, servingKey string
	adminCert, adminKey     string
	saKey                   string // signs and verifies ServiceAccount tokens
}

// writePKI creates a CA, a serving certificate for 127.0.0.1/localhost, an
// admin client certificate (O=system:masters) and the ServiceAccount key.
func writePKI(dir string) (pkiFiles, error) {
	p := pkiFiles{
		dir:    dir,
		caCert: filepath.Join(dir, "ca.crt"), caKey: filepath.Join(dir, "ca.key"),
		servingCert: filepath.Join(dir, "apiserver.crt"), servingKey: filepath.Join(dir, "apiserver.key"),
		adminCert: filepath.Join(dir, "admin.crt"), adminKey: filepath.Join(dir, "admin.key"),
		saKey: filepath.Join(dir, "sa.key"),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return p, err
	}
	caKey, caCert, err := newCert(pkix.Name{CommonName: "vectron-e2e-ca"}, nil, nil, func(t *x509.Certificate) {
		t.IsCA = true
		t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	})
	if err != nil {
		return p, err
	}
	servingKey, servingCert, err := newCert(pkix.Name{CommonName: "kube-apiserver"}, caCert, caKey, func(t *x509.Certificate) {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		t.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		t.DNSNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"}
	})
	if err != nil {
		return p, err
	}
	adminKey, adminCert, err := newCert(pkix.Name{CommonName: "vectron-e2e-admin", Organization: []string{"system:masters"}}, caCert, caKey, func(t *x509.Certificate) {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
	if err != nil {
		return p, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return p, err
	}
	for path, block := range map[string]*pem.Block{
		p.caCert: certPEM(caCert), p.caKey: keyPEM(caKey),
		p.servingCert: certPEM(servingCert), p.servingKey: keyPEM(servingKey),
		p.adminCert: certPEM(adminCert), p.adminKey: keyPEM(adminKey),
		p.saKey: keyPEM(saKey),
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			return p, err
		}
	}
	return p, nil
}

// newCert makes an ECDSA key and a certificate valid for a year, signed by
// parent (self-signed when parent is nil); edit sets the usages.
func newCert(subject pkix.Name, parent *x509.Certificate, parentKey crypto.Signer, edit func(*x509.Certificate)) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	edit(tmpl)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}

func certPEM(c *x509.Certificate) *pem.Block {
	return &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}
}

func keyPEM(k *ecdsa.PrivateKey) *pem.Block {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(err) // only fails for unknown curves
	}
	return &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
}

// writeKubeconfig writes an admin kubeconfig with everything embedded, so it
// can be copied elsewhere.
func writeKubeconfig(path, host string, p pkiFiles) error {
	ca, err := os.ReadFile(p.caCert)
	if err != nil {
		return err
	}
	crt, err := os.ReadFile(p.adminCert)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(p.adminKey)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["vectron-e2e"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: ca}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: crt, ClientKeyData: key}
	cfg.Contexts["vectron-e2e"] = &clientcmdapi.Context{Cluster: "vectron-e2e", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "vectron-e2e"
	return clientcmd.WriteToFile(*cfg, path)
}

// stopCommand implements "apiserver stop --pid-file FILE": SIGTERM, then
// wait until the process is gone.
func stopCommand(args []string) error {
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	pidFile := fs.String("pid-file", "", "pid file written by the start command")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for the exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raw, err := os.ReadFile(*pidFile)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return fmt.Errorf("%s: %w", *pidFile, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("pid %d: %w", pid, err)
	}
	for deadline := time.Now().Add(*timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
	}
	return fmt.Errorf("pid %d still running after %s", pid, *timeout)
}
