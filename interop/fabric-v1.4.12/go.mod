module fabricinteropbuild

go 1.12

require (
	code.cloudfoundry.org/clock v0.0.0-20180518195852-02e53af36e6c
	github.com/Azure/go-ansiterm v0.0.0-20170929234023-d6e3b3328b78
	github.com/BurntSushi/toml v0.3.1
	github.com/Knetic/govaluate v3.0.0+incompatible
	github.com/Microsoft/go-winio v0.4.11
	github.com/Nvveen/Gotty v0.0.0-20120604004816-cd527374f1e5
	github.com/Shopify/sarama v1.19.0
	github.com/alecthomas/template v0.0.0-20160405071501-a0175ee3bccc
	github.com/alecthomas/units v0.0.0-20151022065526-2efee857e7cf
	github.com/beorn7/perks v0.0.0-20180321164747-3a771d992973
	github.com/containerd/continuity v0.0.0-20181003075958-be9bd761db19
	github.com/coreos/go-systemd v0.0.0-20180511133405-39ca1b05acc7
	github.com/coreos/pkg v0.0.0-20180108230652-97fdf19511ea
	github.com/davecgh/go-spew v1.1.1
	github.com/docker/docker v1.4.2-0.20180827131323-0c5f8d2b9b23
	github.com/docker/go-connections v0.4.0
	github.com/docker/go-units v0.3.3
	github.com/docker/libnetwork v0.8.0-dev.2.0.20180608203834-19279f049241
	github.com/dustin/go-humanize v1.0.0
	github.com/eapache/go-resiliency v1.1.0
	github.com/eapache/go-xerial-snappy v0.0.0-20180814174437-776d5712da21
	github.com/eapache/queue v1.1.0
	github.com/fsouza/go-dockerclient v1.3.0
	github.com/go-kit/kit v0.7.0
	github.com/go-logfmt/logfmt v0.3.0
	github.com/go-stack/stack v1.8.0
	github.com/gogo/protobuf v1.1.1
	github.com/golang/protobuf v1.2.0
	github.com/golang/snappy v0.0.1
	github.com/gorilla/context v1.1.1
	github.com/gorilla/handlers v1.4.0
	github.com/gorilla/mux v1.6.2
	github.com/grpc-ecosystem/go-grpc-middleware v1.0.0
	github.com/hashicorp/go-version v1.0.0
	github.com/hyperledger/fabric v1.4.12
	github.com/hyperledger/fabric-amcl v0.0.0-20180903120555-6b78f7a22d95
	github.com/hyperledger/fabric-lib-go v1.0.0
	github.com/inconshreveable/mousetrap v1.0.0
	github.com/konsorten/go-windows-terminal-sequences v0.0.0-20180402223658-b729f2633dfe
	github.com/kr/logfmt v0.0.0-20140226030751-b84e30acd515
	github.com/kr/pretty v0.1.0
	github.com/kr/text v0.1.0
	github.com/magiconair/properties v1.8.0
	github.com/mattn/go-runewidth v0.0.3
	github.com/matttproud/golang_protobuf_extensions v1.0.1
	github.com/miekg/pkcs11 v1.0.2
	github.com/mitchellh/mapstructure v1.1.1
	github.com/onsi/ginkgo v1.14.0
	github.com/onsi/gomega v1.10.1
	github.com/op/go-logging v0.0.0-20160315200505-970db520ece7
	github.com/opencontainers/go-digest v1.0.0-rc1
	github.com/opencontainers/image-spec v1.0.1
	github.com/opencontainers/runc v0.1.1
	github.com/pierrec/lz4 v0.0.0-20180906185208-bb6bfd13c6a2
	github.com/pkg/errors v0.8.0
	github.com/pmezard/go-difflib v1.0.0
	github.com/prometheus/client_golang v0.9.0
	github.com/prometheus/client_model v0.0.0-20180712105110-5c3871d89910
	github.com/prometheus/common v0.0.0-20181019103554-16b4535ad14a
	github.com/prometheus/procfs v0.0.0-20181005140218-185b4288413d
	github.com/rcrowley/go-metrics v0.0.0-20181016184325-3113b8401b8a
	github.com/sirupsen/logrus v1.1.0
	github.com/spf13/cast v1.2.0
	github.com/spf13/cobra v0.0.3
	github.com/spf13/jwalterweatherman v1.0.0
	github.com/spf13/pflag v1.0.3
	github.com/spf13/viper v0.0.0-20150908122457-1967d93db724
	github.com/stretchr/objx v0.1.1
	github.com/stretchr/testify v1.3.0
	github.com/sykesm/zap-logfmt v0.0.1
	github.com/syndtr/goleveldb v1.0.1-0.20210305035536-64b5b1c73954
	github.com/tedsuo/ifrit v0.0.0-20180802180643-bea94bb476cc
	github.com/willf/bitset v1.1.9
	go.etcd.io/etcd v0.5.0-alpha.5.0.20181228115726-23731bf9ba55
	go.uber.org/atomic v1.3.2
	go.uber.org/multierr v1.1.0
	go.uber.org/zap v1.9.1
	golang.org/x/crypto v0.0.0-20200128174031-69ecbb4d6d5d
	golang.org/x/net v0.0.0-20200813134508-3edf25e44fcc
	golang.org/x/sync v0.0.0-20180314180146-1d60e4601c6f
	golang.org/x/sys v0.0.0-20200814200057-3d37ad5750ed
	golang.org/x/text v0.3.3
	google.golang.org/genproto v0.0.0-20180928223349-c7e5094acea1
	google.golang.org/grpc v1.15.0
	gopkg.in/alecthomas/kingpin.v2 v2.2.6
	gopkg.in/cheggaaa/pb.v1 v1.0.25
	gopkg.in/yaml.v2 v2.2.1
)

replace (
	code.cloudfoundry.org/clock => code.cloudfoundry.org/clock v0.0.0-20180518195852-02e53af36e6c
	github.com/Azure/go-ansiterm => github.com/Azure/go-ansiterm v0.0.0-20170929234023-d6e3b3328b78
	github.com/BurntSushi/toml => github.com/BurntSushi/toml v0.3.1
	github.com/Knetic/govaluate => github.com/Knetic/govaluate v3.0.0+incompatible
	github.com/Microsoft/go-winio => github.com/Microsoft/go-winio v0.4.11
	github.com/Nvveen/Gotty => github.com/Nvveen/Gotty v0.0.0-20120604004816-cd527374f1e5
	github.com/Shopify/sarama => github.com/Shopify/sarama v1.19.0
	github.com/alecthomas/template => github.com/alecthomas/template v0.0.0-20160405071501-a0175ee3bccc
	github.com/alecthomas/units => github.com/alecthomas/units v0.0.0-20151022065526-2efee857e7cf
	github.com/beorn7/perks => github.com/beorn7/perks v0.0.0-20180321164747-3a771d992973
	github.com/containerd/continuity => github.com/containerd/continuity v0.0.0-20181003075958-be9bd761db19
	github.com/coreos/go-systemd => github.com/coreos/go-systemd v0.0.0-20180511133405-39ca1b05acc7
	github.com/coreos/pkg => github.com/coreos/pkg v0.0.0-20180108230652-97fdf19511ea
	github.com/davecgh/go-spew => github.com/davecgh/go-spew v1.1.1
	github.com/docker/docker => github.com/docker/docker v1.4.2-0.20180827131323-0c5f8d2b9b23
	github.com/docker/go-connections => github.com/docker/go-connections v0.4.0
	github.com/docker/go-units => github.com/docker/go-units v0.3.3
	github.com/docker/libnetwork => github.com/docker/libnetwork v0.8.0-dev.2.0.20180608203834-19279f049241
	github.com/dustin/go-humanize => github.com/dustin/go-humanize v1.0.0
	github.com/eapache/go-resiliency => github.com/eapache/go-resiliency v1.1.0
	github.com/eapache/go-xerial-snappy => github.com/eapache/go-xerial-snappy v0.0.0-20180814174437-776d5712da21
	github.com/eapache/queue => github.com/eapache/queue v1.1.0
	github.com/fsouza/go-dockerclient => github.com/fsouza/go-dockerclient v1.3.0
	github.com/go-kit/kit => github.com/go-kit/kit v0.7.0
	github.com/go-logfmt/logfmt => github.com/go-logfmt/logfmt v0.3.0
	github.com/go-stack/stack => github.com/go-stack/stack v1.8.0
	github.com/gogo/protobuf => github.com/gogo/protobuf v1.1.1
	github.com/golang/protobuf => github.com/golang/protobuf v1.2.0
	github.com/golang/snappy => github.com/golang/snappy v0.0.0-20180518054509-2e65f85255db
	github.com/gorilla/context => github.com/gorilla/context v1.1.1
	github.com/gorilla/handlers => github.com/gorilla/handlers v1.4.0
	github.com/gorilla/mux => github.com/gorilla/mux v1.6.2
	github.com/grpc-ecosystem/go-grpc-middleware => github.com/grpc-ecosystem/go-grpc-middleware v1.0.0
	github.com/hashicorp/go-version => github.com/hashicorp/go-version v1.0.0
	github.com/hyperledger/fabric-amcl => github.com/hyperledger/fabric-amcl v0.0.0-20180903120555-6b78f7a22d95
	github.com/hyperledger/fabric-lib-go => github.com/hyperledger/fabric-lib-go v1.0.0
	github.com/inconshreveable/mousetrap => github.com/inconshreveable/mousetrap v1.0.0
	github.com/konsorten/go-windows-terminal-sequences => github.com/konsorten/go-windows-terminal-sequences v0.0.0-20180402223658-b729f2633dfe
	github.com/kr/logfmt => github.com/kr/logfmt v0.0.0-20140226030751-b84e30acd515
	github.com/kr/pretty => github.com/kr/pretty v0.1.0
	github.com/kr/text => github.com/kr/text v0.1.0
	github.com/magiconair/properties => github.com/magiconair/properties v1.8.0
	github.com/mattn/go-runewidth => github.com/mattn/go-runewidth v0.0.3
	github.com/matttproud/golang_protobuf_extensions => github.com/matttproud/golang_protobuf_extensions v1.0.1
	github.com/miekg/pkcs11 => github.com/miekg/pkcs11 v1.0.2
	github.com/mitchellh/mapstructure => github.com/mitchellh/mapstructure v1.1.1
	github.com/onsi/ginkgo => github.com/onsi/ginkgo v1.6.0
	github.com/onsi/gomega => github.com/onsi/gomega v1.4.2
	github.com/op/go-logging => github.com/op/go-logging v0.0.0-20160315200505-970db520ece7
	github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.0-rc1
	github.com/opencontainers/image-spec => github.com/opencontainers/image-spec v1.0.1
	github.com/opencontainers/runc => github.com/opencontainers/runc v0.1.1
	github.com/pierrec/lz4 => github.com/pierrec/lz4 v0.0.0-20180906185208-bb6bfd13c6a2
	github.com/pkg/errors => github.com/pkg/errors v0.8.0
	github.com/pmezard/go-difflib => github.com/pmezard/go-difflib v1.0.0
	github.com/prometheus/client_golang => github.com/prometheus/client_golang v0.9.0
	github.com/prometheus/client_model => github.com/prometheus/client_model v0.0.0-20180712105110-5c3871d89910
	github.com/prometheus/common => github.com/prometheus/common v0.0.0-20181019103554-16b4535ad14a
	github.com/prometheus/procfs => github.com/prometheus/procfs v0.0.0-20181005140218-185b4288413d
	github.com/rcrowley/go-metrics => github.com/rcrowley/go-metrics v0.0.0-20181016184325-3113b8401b8a
	github.com/sirupsen/logrus => github.com/sirupsen/logrus v1.1.0
	github.com/spf13/cast => github.com/spf13/cast v1.2.0
	github.com/spf13/cobra => github.com/spf13/cobra v0.0.3
	github.com/spf13/jwalterweatherman => github.com/spf13/jwalterweatherman v1.0.0
	github.com/spf13/pflag => github.com/spf13/pflag v1.0.3
	github.com/spf13/viper => github.com/spf13/viper v0.0.0-20150908122457-1967d93db724
	github.com/stretchr/objx => github.com/stretchr/objx v0.1.1
	github.com/stretchr/testify => github.com/stretchr/testify v1.2.2
	github.com/sykesm/zap-logfmt => github.com/sykesm/zap-logfmt v0.0.1
	github.com/syndtr/goleveldb => github.com/syndtr/goleveldb v1.0.1-0.20210305035536-64b5b1c73954
	github.com/tedsuo/ifrit => github.com/tedsuo/ifrit v0.0.0-20180802180643-bea94bb476cc
	github.com/willf/bitset => github.com/willf/bitset v1.1.9
	go.etcd.io/etcd => go.etcd.io/etcd v0.5.0-alpha.5.0.20181228115726-23731bf9ba55
	go.uber.org/atomic => go.uber.org/atomic v1.3.2
	go.uber.org/multierr => go.uber.org/multierr v1.1.0
	go.uber.org/zap => go.uber.org/zap v1.9.1
	golang.org/x/crypto => golang.org/x/crypto v0.0.0-20200128174031-69ecbb4d6d5d
	golang.org/x/net => golang.org/x/net v0.0.0-20181003013248-f5e5bdd77824
	golang.org/x/sync => golang.org/x/sync v0.0.0-20180314180146-1d60e4601c6f
	golang.org/x/sys => golang.org/x/sys v0.0.0-20200201011859-915c9c3d4ccf
	golang.org/x/text => golang.org/x/text v0.3.0
	google.golang.org/genproto => google.golang.org/genproto v0.0.0-20180928223349-c7e5094acea1
	google.golang.org/grpc => google.golang.org/grpc v1.15.0
	gopkg.in/alecthomas/kingpin.v2 => gopkg.in/alecthomas/kingpin.v2 v2.2.6
	gopkg.in/cheggaaa/pb.v1 => gopkg.in/cheggaaa/pb.v1 v1.0.25
	gopkg.in/yaml.v2 => gopkg.in/yaml.v2 v2.2.1
)
