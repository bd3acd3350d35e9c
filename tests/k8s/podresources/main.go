// A PodResources gRPC server for tests: the kubelet's v1.PodResourcesLister
// (k8s.io/kubelet/pkg/apis/podresources/v1) on a unix socket, answering List
// from a JSON file that the test rewrites (read on every call), so a test can
// change which devices each pod was allocated while the server runs.
//
// Usage: podresources-server -socket PATH -state FILE
//
// The state file holds the ListPodResourcesResponse as JSON:
//
//	{"pod_resources": [{"name": "web", "namespace": "app", "containers": [
//	  {"name": "c", "devices": [{"resource_name": "x/vf", "device_ids": ["0000:3b:02.1"]}]}]}]}
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	v1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

type server struct {
	v1.UnimplementedPodResourcesListerServer
	state string
}

type device struct {
	ResourceName string   `json:"resource_name"`
	DeviceIDs    []string `json:"device_ids"`
}

type container struct {
	Name    string   `json:"name"`
	Devices []device `json:"devices"`
}

type pod struct {
	Name       string      `json:"name"`
	Namespace  string      `json:"namespace"`
	Containers []container `json:"containers"`
}

type state struct {
	PodResources []pod `json:"pod_resources"`
}

func (s *server) List(context.Context, *v1.ListPodResourcesRequest) (*v1.ListPodResourcesResponse, error) {
	data, err := os.ReadFile(s.state)
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	out := &v1.ListPodResourcesResponse{}
	for _, p := range st.PodResources {
		pr := &v1.PodResources{Name: p.Name, Namespace: p.Namespace}
		for _, c := range p.Containers {
			cr := &v1.ContainerResources{Name: c.Name}
			for _, d := range c.Devices {
				cr.Devices = append(cr.Devices, &v1.ContainerDevices{ResourceName: d.ResourceName, DeviceIds: d.DeviceIDs})
			}
			pr.Containers = append(pr.Containers, cr)
		}
		out.PodResources = append(out.PodResources, pr)
	}
	return out, nil
}

func main() {
	socket := flag.String("socket", "", "unix socket to listen on")
	statePath := flag.String("state", "", "JSON file with the List answer")
	flag.Parse()
	_ = os.Remove(*socket)
	listener, err := net.Listen("unix", *socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	grpcServer := grpc.NewServer()
	v1.RegisterPodResourcesListerServer(grpcServer, &server{state: *statePath})
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		grpcServer.Stop()
	}()
	fmt.Println("listening", *socket)
	if err := grpcServer.Serve(listener); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
