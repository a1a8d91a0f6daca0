// Readiness probe used by `kafka.sh wait`. Compiled by `kafka.sh fetch` into the cache dir.
//
// usage: ReadyCheck <timeout-seconds> <bootstrap list> <expected broker ids, comma separated> [name=pid ...]
//
// Polls (every 500 ms, until the deadline) and succeeds only when
//   1. DescribeCluster (metadata from a live broker) lists exactly the expected broker ids,
//   2. the cluster reports a controller,
//   3. every expected broker answers a DescribeConfigs(BROKER <id>) request, which the admin
//      client routes to that very broker: each one is up and serving requests.
// Exits 0 when ready, 1 on timeout, 3 as soon as one of the given processes has exited.
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.config.ConfigResource;

public class ReadyCheck {
    public static void main(String[] a) throws Exception {
        if (a.length < 3) {
            System.err.println("usage: ReadyCheck <timeout-seconds> <bootstrap> <ids> [name=pid ...]");
            System.exit(2);
        }
        long t0 = System.nanoTime();
        long deadline = t0 + (long) (Double.parseDouble(a[0]) * 1e9);
        String bootstrap = a[1];
        Set<Integer> expected = new TreeSet<>();
        for (String s : a[2].split(",")) if (!s.isBlank()) expected.add(Integer.parseInt(s.trim()));
        Map<String, Long> pids = new LinkedHashMap<>();
        for (int i = 3; i < a.length; i++) {
            String[] kv = a[i].split("=", 2);
            pids.put(kv[0], Long.parseLong(kv[1]));
        }

        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "1000");
        p.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, "200");
        p.put(AdminClientConfig.METADATA_MAX_AGE_CONFIG, "1000");

        String last = "";
        Admin admin = Admin.create(p);
        while (true) {
            for (Map.Entry<String, Long> e : pids.entrySet()) {
                boolean alive = ProcessHandle.of(e.getValue()).map(ProcessHandle::isAlive).orElse(false);
                if (!alive) {
                    System.err.printf("kafka.sh wait: %s (pid %d) has exited%n", e.getKey(), e.getValue());
                    System.exit(3);
                }
            }
            String status;
            // never block past the deadline: each request gets min(4 s, time left) (at least 200 ms)
            int callMs = (int) Math.max(200, Math.min(4000, (deadline - System.nanoTime()) / 1_000_000));
            try {
                DescribeClusterResult r = admin.describeCluster(new DescribeClusterOptions().timeoutMs(callMs));
                Collection<Node> nodes = r.nodes().get(callMs + 1000, TimeUnit.MILLISECONDS);
                Node controller = r.controller().get(callMs + 1000, TimeUnit.MILLISECONDS);
                Set<Integer> ids = new TreeSet<>();
                for (Node n : nodes) ids.add(n.id());
                if (!ids.equals(expected)) {
                    status = "registered brokers " + ids + ", want " + expected;
                } else if (controller == null || controller.isEmpty()) {
                    status = "brokers " + ids + " registered, no controller yet";
                } else {
                    List<ConfigResource> rs = new ArrayList<>();
                    for (int id : expected) rs.add(new ConfigResource(ConfigResource.Type.BROKER, Integer.toString(id)));
                    Map<ConfigResource, KafkaFuture<Config>> m =
                        admin.describeConfigs(rs, new DescribeConfigsOptions().timeoutMs(callMs)).values();
                    List<String> notServing = new ArrayList<>();
                    for (Map.Entry<ConfigResource, KafkaFuture<Config>> e : m.entrySet()) {
                        try {
                            e.getValue().get(callMs + 1000, TimeUnit.MILLISECONDS);
                        } catch (ExecutionException | TimeoutException ex) {
                            notServing.add(e.getKey().name());
                        }
                    }
                    if (notServing.isEmpty()) {
                        System.out.printf("ready: brokers %s registered and serving, controller %d (%.1f s)%n",
                            ids, controller.id(), (System.nanoTime() - t0) / 1e9);
                        System.exit(0);
                    }
                    Collections.sort(notServing);
                    status = "brokers " + ids + " registered; not answering yet: " + notServing;
                }
            } catch (ExecutionException | TimeoutException e) {
                Throwable c = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
                status = "cluster not reachable yet (" + c.getClass().getSimpleName() + ")";
            }
            double el = (System.nanoTime() - t0) / 1e9;
            if (!status.equals(last)) {
                System.err.printf("[%5.1fs] %s%n", el, status);
                last = status;
            }
            if (System.nanoTime() > deadline) {
                System.err.printf("kafka.sh wait: TIMEOUT after %.0f s: %s%n", el, status);
                System.exit(1);
            }
            Thread.sleep(500);
        }
    }
}
