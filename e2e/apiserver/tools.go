package main

// The client tools built into the same binary, so tests need nothing
// beyond it: `apiserver kubectl ...` is kubectl and `apiserver helm ...`
// is helm, from the same Kubernetes release as the control plane
// (k8s.io/kubectl, helm.sh/helm/v4). Both read KUBECONFIG as usual.

import (
	"errors"
	"log/slog"
	"os"

	helmcmd "helm.sh/helm/v4/pkg/cmd"
	helmkube "helm.sh/helm/v4/pkg/kube"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
)

// runTool runs the tool named by os.Args[1] and exits; it returns only
// when os.Args[1] names no tool.
func runTool() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case "kubectl":
		os.Args = os.Args[1:]
		command := kubectlcmd.NewDefaultKubectlCommand()
		if err := cli.RunNoErrOutput(command); err != nil {
			kubectlutil.CheckErr(err)
		}
		os.Exit(0)
	case "helm":
		os.Args = os.Args[1:]
		helmkube.ManagedFieldsManager = "helm"
		command, err := helmcmd.NewRootCmd(os.Stdout, os.Args[1:], helmcmd.SetupLogging)
		if err != nil {
			slog.Warn("command failed", slog.Any("error", err))
			os.Exit(1)
		}
		if err := command.Execute(); err != nil {
			if commandError, ok := errors.AsType[helmcmd.CommandError](err); ok {
				os.Exit(commandError.ExitCode)
			}
			os.Exit(1)
		}
		os.Exit(0)
	}
}
