package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

func claim() *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "quotes-1", Namespace: "dev2-staging"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

func TestProvisionMakesALocalVolumeOnTheNode(t *testing.T) {
	root := filepath.Join(t.TempDir(), "volumes")
	p := &Provisioner{Root: root, Node: "slipway"}
	pv, state, err := p.Provision(context.Background(), controller.ProvisionOptions{PVName: "pvc-1", PVC: claim(), SelectedNodeName: "slipway", StorageClass: Class()})
	if err != nil || state != controller.ProvisioningFinished {
		t.Fatalf("provision: %v %v", state, err)
	}
	dir := filepath.Join(root, "pvc-1")
	if pv.Spec.Local == nil || pv.Spec.Local.Path != dir {
		t.Fatalf("volume source: %+v", pv.Spec.PersistentVolumeSource)
	}
	if got := pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values; len(got) != 1 || got[0] != "slipway" {
		t.Errorf("node affinity: %v", got)
	}
	if q := pv.Spec.Capacity[corev1.ResourceStorage]; q.String() != "1Gi" || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Errorf("capacity %s, reclaim %s", q.String(), pv.Spec.PersistentVolumeReclaimPolicy)
	}
	if st, err := os.Stat(root); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the volumes' parent must keep host users out: %v %v", st.Mode(), err)
	}
	if err := os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(context.Background(), pv); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deleted volume's directory is still there: %v", err)
	}
}

func TestProvisionerStaysUnderItsRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	p := &Provisioner{Root: root, Node: "slipway"}
	for _, name := range []string{"../escape", "a/b", "..", ""} {
		if _, _, err := p.Provision(context.Background(), controller.ProvisionOptions{PVName: name, PVC: claim()}); err == nil {
			t.Errorf("volume name %q accepted", name)
		}
	}
	if _, _, err := p.Provision(context.Background(), controller.ProvisionOptions{PVName: "pvc-2", PVC: claim(), SelectedNodeName: "other"}); err == nil {
		t.Error("a volume for another node was made")
	}
	// A volume that is not this provisioner's, though it names the same
	// directory name, is left alone: its data is outside the root.
	victim := filepath.Join(outside, "pvc-3")
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-3"},
		Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: victim}}}}
	var ignored *controller.IgnoredError
	if err := p.Delete(context.Background(), pv); !errors.As(err, &ignored) {
		t.Errorf("deleting a volume outside the root: %v", err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("the directory outside the root was removed: %v", err)
	}
}
