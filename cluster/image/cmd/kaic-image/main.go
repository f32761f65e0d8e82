// Command kaic-image writes a directory tree as a single-layer OCI image layout archive, reproducibly: the
// layer's entries are in lexical order with one mtime (SOURCE_DATE_EPOCH) and owner 0:0 (or what -owner
// says), the config's created time is SOURCE_DATE_EPOCH, and the archive itself is a sorted tar with the same
// mtime. The same tree and flags give the same image digest. `ctr images import` reads the archive and names
// the image by its io.containerd.image.name annotation, as for kaic's other local images
// (src/kaic/localcluster/images.py). No container engine is needed.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

type owner struct{ uid, gid int }

func main() {
	var rootfs, out, ref, user, workdir string
	var entrypoint, env, labels, owners list
	flag.StringVar(&rootfs, "rootfs", "", "directory whose contents become the image's filesystem")
	flag.StringVar(&out, "o", "", "OCI image layout archive to write")
	flag.StringVar(&ref, "ref", "", "image name, e.g. kaic.local/runner:0.1.0 (annotations io.containerd.image.name and org.opencontainers.image.ref.name)")
	flag.StringVar(&user, "user", "", "the config's User (uid[:gid])")
	flag.StringVar(&workdir, "workdir", "", "the config's WorkingDir")
	flag.Var(&entrypoint, "entrypoint", "an entrypoint argument (repeat, in order)")
	flag.Var(&env, "env", "KEY=VALUE for the config's Env (repeat)")
	flag.Var(&labels, "label", "KEY=VALUE for the config's Labels (repeat)")
	flag.Var(&owners, "owner", "PATH=UID:GID owner of one path inside the image (repeat); every other entry is 0:0")
	flag.Parse()
	if err := run(rootfs, out, ref, user, workdir, entrypoint, env, labels, owners); err != nil {
		fmt.Fprintln(os.Stderr, "kaic-image:", err)
		os.Exit(1)
	}
}

func run(rootfs, out, ref, user, workdir string, entrypoint, env, labels, owners list) error {
	if rootfs == "" || out == "" || ref == "" {
		return errors.New("-rootfs, -o and -ref are required")
	}
	epoch, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	if err != nil {
		return fmt.Errorf("SOURCE_DATE_EPOCH must be set to a Unix time: %w", err)
	}
	mtime := time.Unix(epoch, 0).UTC()
	byPath := map[string]owner{}
	for _, o := range owners {
		path, ids, ok := strings.Cut(o, "=")
		uid, gid, ok2 := strings.Cut(ids, ":")
		u, err1 := strconv.Atoi(uid)
		g, err2 := strconv.Atoi(gid)
		if !ok || !ok2 || err1 != nil || err2 != nil {
			return fmt.Errorf("-owner %q: want PATH=UID:GID", o)
		}
		byPath[strings.Trim(path, "/")] = owner{u, g}
	}
	layerTar, err := layerFromDir(rootfs, mtime, byPath)
	if err != nil {
		return err
	}
	img, err := image(layerTar, mtime, entrypoint, env, labels, user, workdir)
	if err != nil {
		return err
	}
	return writeArchive(img, ref, out, mtime)
}

// layerFromDir tars rootfs in lexical order (filepath.WalkDir's), every entry with mtime and owner 0:0
// unless owners names it. Hard links are stored as separate files.
func layerFromDir(rootfs string, mtime time.Time, owners map[string]owner) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(rootfs, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == rootfs {
			return err
		}
		name, err := filepath.Rel(rootfs, path)
		if err != nil {
			return err
		}
		name = filepath.ToSlash(name)
		info, err := d.Info()
		if err != nil {
			return err
		}
		o := owners[name]
		hdr := &tar.Header{Name: name, ModTime: mtime, Mode: int64(info.Mode().Perm()) | modeBits(info.Mode()),
			Uid: o.uid, Gid: o.gid}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		case info.Mode()&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			if hdr.Linkname, err = os.Readlink(path); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
		default:
			return fmt.Errorf("%s: unsupported file type %s", path, info.Mode().Type())
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// modeBits maps Go's setuid/setgid/sticky mode bits to the tar header's.
func modeBits(m fs.FileMode) int64 {
	var bits int64
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

// image builds an OCI (not Docker) image of one gzip layer with the given config.
func image(layerTar []byte, mtime time.Time, entrypoint, env, labels list, user, workdir string) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: mtime}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer,
		History: v1.History{Created: created, CreatedBy: "kaic-image", Comment: "the whole root filesystem"}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = "amd64", "linux", created
	cf.Config.Entrypoint, cf.Config.Env, cf.Config.User, cf.Config.WorkingDir = entrypoint, env, user, workdir
	if len(labels) > 0 {
		cf.Config.Labels = map[string]string{}
		for _, l := range labels {
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				return nil, fmt.Errorf("-label %q: want KEY=VALUE", l)
			}
			cf.Config.Labels[k] = v
		}
	}
	return mutate.ConfigFile(img, cf)
}

// writeArchive writes img as an OCI image layout into a temporary directory and tars that, sorted, with mtime.
func writeArchive(img v1.Image, ref, out string, mtime time.Time) error {
	dir, err := os.MkdirTemp("", "kaic-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	tag := ref[strings.LastIndex(ref, ":")+1:]
	if err := p.AppendImage(img, layout.WithPlatform(v1.Platform{Architecture: "amd64", OS: "linux"}),
		layout.WithAnnotations(map[string]string{
			"io.containerd.image.name":          ref,
			"org.opencontainers.image.ref.name": tag,
		})); err != nil {
		return err
	}
	var names []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			names = append(names, path)
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, path := range names {
		data, err := os.ReadFile(path)
		if err != nil {
			return errors.Join(err, f.Close())
		}
		name, _ := filepath.Rel(dir, path)
		hdr := &tar.Header{Name: filepath.ToSlash(name), Mode: 0o644, Size: int64(len(data)), ModTime: mtime,
			Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return errors.Join(err, f.Close())
		}
		if _, err := tw.Write(data); err != nil {
			return errors.Join(err, f.Close())
		}
	}
	if err := tw.Close(); err != nil {
		return errors.Join(err, f.Close())
	}
	digest, err := img.Digest()
	if err != nil {
		return errors.Join(err, f.Close())
	}
	fmt.Println(digest)
	return f.Close()
}
