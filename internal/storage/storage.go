// Package storage gives the local cluster dynamic volumes: a
// PersistentVolumeClaim of the platform's StorageClass gets a directory
// under the state directory, as a local PersistentVolume on the node.
// It is the cluster's default class: databases need it (CloudNativePG asks
// for a claim per instance), a team's chart may claim a volume, and a
// platform deploying to this cluster from elsewhere keeps its jobs' Go
// caches on it. The provisioning controller is the Kubernetes storage
// SIG's library, so claims, binding, retries and deletion behave as with
// any external provisioner.
package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

// ClassName is the platform's StorageClass, the cluster's default.
const ClassName = "slipway-local"

// DefaultClassAnnotation marks a cluster's default StorageClass, the one
// a claim that names none gets.
const DefaultClassAnnotation = "storageclass.kubernetes.io/is-default-class"

// ProvisionerName is the name the StorageClass gives its provisioner.
const ProvisionerName = "slipway.dev/local"

// Class is the StorageClass: volumes are made when a pod that uses the
// claim is scheduled (so they are on its node), and go with the claim.
func Class() *storagev1.StorageClass {
	binding := storagev1.VolumeBindingWaitForFirstConsumer
	reclaim := corev1.PersistentVolumeReclaimDelete
	return &storagev1.StorageClass{
		TypeMeta:          metav1.TypeMeta{APIVersion: "storage.k8s.io/v1", Kind: "StorageClass"},
		ObjectMeta:        metav1.ObjectMeta{Name: ClassName, Annotations: map[string]string{DefaultClassAnnotation: "true"}},
		Provisioner:       ProvisionerName,
		VolumeBindingMode: &binding,
		ReclaimPolicy:     &reclaim,
	}
}

// Provisioner makes each volume a directory under Root on Node.
type Provisioner struct {
	Root string
	Node string
}

var _ controller.Provisioner = (*Provisioner)(nil)

// dir is where a volume's data lives.
func (p *Provisioner) dir(pvName string) (string, error) {
	if pvName == "" || strings.ContainsAny(pvName, "/\\") || pvName == "." || pvName == ".." {
		return "", fmt.Errorf("volume name %q cannot name a directory", pvName)
	}
	return filepath.Join(p.Root, pvName), nil
}

// Provision makes the directory and the PersistentVolume for a claim.
func (p *Provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (*corev1.PersistentVolume, controller.ProvisioningState, error) {
	if opts.SelectedNodeName != "" && opts.SelectedNodeName != p.Node {
		return nil, controller.ProvisioningFinished, fmt.Errorf("node %q: this provisioner makes volumes on node %q only", opts.SelectedNodeName, p.Node)
	}
	if opts.PVC.Spec.Selector != nil {
		return nil, controller.ProvisioningFinished, errors.New("claims with a selector are not supported")
	}
	dir, err := p.dir(opts.PVName)
	if err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	if err := os.MkdirAll(p.Root, 0o700); err != nil {
		return nil, controller.ProvisioningInBackground, err
	}
	// The pod's user is unknown here (PostgreSQL runs as 26, apps as
	// 65532): the directory is open to it, and the parent, 0700 and the
	// root's, keeps everyone else on the host out.
	if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, controller.ProvisioningInBackground, err
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		return nil, controller.ProvisioningInBackground, err
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if opts.StorageClass != nil && opts.StorageClass.ReclaimPolicy != nil {
		reclaim = *opts.StorageClass.ReclaimPolicy
	}
	mode := corev1.PersistentVolumeFilesystem
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: opts.PVName},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaim,
			AccessModes:                   opts.PVC.Spec.AccessModes,
			VolumeMode:                    &mode,
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: opts.PVC.Spec.Resources.Requests[corev1.ResourceStorage]},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{p.Node}}},
			}}}},
		},
	}
	return pv, controller.ProvisioningFinished, nil
}

// Delete removes a volume's directory.
func (p *Provisioner) Delete(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Spec.Local == nil {
		return &controller.IgnoredError{Reason: "not a local volume"}
	}
	dir, err := p.dir(pv.Name)
	if err != nil {
		return err
	}
	if pv.Spec.Local.Path != dir {
		return &controller.IgnoredError{Reason: fmt.Sprintf("volume at %s is not under %s", pv.Spec.Local.Path, p.Root)}
	}
	return os.RemoveAll(dir)
}

// Run provisions and deletes volumes until ctx ends.
func (p *Provisioner) Run(ctx context.Context, client kubernetes.Interface) {
	pc := controller.NewProvisionController(ctx, client, ProvisionerName, p,
		controller.LeaderElection(false),
		controller.FailedProvisionThreshold(0),
	)
	pc.Run(ctx)
}
