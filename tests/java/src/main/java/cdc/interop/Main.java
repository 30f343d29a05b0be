package cdc.interop;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Reference readers and writers for the interoperability tests, built on the libraries other
 * systems use to read our topics: Kafka Connect's {@code JsonConverter} (schemas.enable=true) and
 * Apache Avro's Java library.
 *
 * <pre>
 * connect-read            stdin: one JSON-with-schema document per line ("null" for no value)
 *                         stdout: one JSON object per line: what toConnectData understood
 *                         ({@link Canon}) and fromConnectData's bytes for it
 * connect-build           stdout: "case.part TAB document" lines, records for every Connect type
 *                         built with the Connect API and written by fromConnectData
 * avro-read REGISTRY_URL  stdin: one hex Confluent-framed message per line ("-" for no value)
 *                         stdout: one JSON object per line: the values Avro's GenericDatumReader
 *                         read with the writer schema fetched by id, logical types converted
 * </pre>
 *
 * A line that cannot be read gives {"ok":false,"error":…} and the tool goes on; the exit code is
 * non-zero only for bad usage.
 */
public final class Main {
    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        String cmd = args.length > 0 ? args[0] : "";
        switch (cmd) {
            case "connect-read" -> ConnectJson.read(stdinLines(), out);
            case "connect-build" -> ConnectJson.build(out);
            case "avro-read" -> {
                if (args.length != 2) usage();
                AvroRead.read(args[1], stdinLines(), out);
            }
            default -> usage();
        }
        out.flush();
    }

    private static void usage() {
        System.err.println("usage: interop-tools connect-read | connect-build | avro-read REGISTRY_URL");
        System.exit(2);
    }

    private static List<String> stdinLines() throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        List<String> lines = new ArrayList<>();
        for (String line; (line = in.readLine()) != null; ) {
            if (!line.isEmpty()) lines.add(line);
        }
        return lines;
    }
}
