using System.Text.Json;
using MLNetTransformerExtensions.Tests.Cli;
using MLNetTransformerExtensions.Tokenization;

namespace MLNetTransformerExtensions.Tests.Benchmarks;

/// <summary>
/// The <c>bench</c> command at tiny sizes: it runs end to end and its JSON carries every field with the values the
/// settings and the config imply. Timings are only checked to be positive: benchmarks are not timed unit tests.
/// </summary>
[TestClass]
public sealed class BenchCommandTests
{
    private static readonly string[] RequiredFields =
    [
        "config", "parameters", "batch_size", "seq_len", "threads", "inference_seq_per_s", "training_seq_per_s",
        "matmul_gflops", "inference_mfu", "training_mfu", "peak_rss_mb", "steady_rss_mb",
    ];

    private static JsonElement RunBench(string arguments, string work)
    {
        var json = Path.Combine(work, "bench.json");
        var (exit, stdout, stderr) = CliRunner.Run($"bench {arguments} --steps 1 --warmup 0 --threads 1 --matmul-size 64 --json \"{json}\"");
        Assert.AreEqual(0, exit, stderr);
        StringAssert.Contains(stdout, "training MFU", "the table goes to stdout");
        using var document = JsonDocument.Parse(File.ReadAllText(json));
        return document.RootElement.Clone();
    }

    private static double Number(JsonElement json, string field) => json.GetProperty(field).GetDouble();

    [TestMethod]
    public void Gpt2MiniReportsEveryFieldWithTheValuesItsConfigImplies()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var json = RunBench("--config gpt2-mini --batch-size 2 --seq-len 8", work);
            foreach (var field in RequiredFields)
            {
                Assert.IsTrue(json.TryGetProperty(field, out _), $"missing JSON field '{field}'");
            }

            Assert.AreEqual("gpt2-mini", json.GetProperty("config").GetString());
            Assert.AreEqual(2, json.GetProperty("batch_size").GetInt32());
            Assert.AreEqual(8, json.GetProperty("seq_len").GetInt32());
            Assert.AreEqual(1, json.GetProperty("threads").GetInt32());

            // wte + wpe + 4 × (ln_1, c_attn, c_proj, ln_2, c_fc, mlp.c_proj) + ln_f + score (no bias, 2 labels)
            const long h = 256, inner = 1024;
            const long layer = 2 * h + (h * 3 * h + 3 * h) + (h * h + h) + 2 * h + (h * inner + inner) + (inner * h + h);
            Assert.AreEqual((50257 * h) + (1024 * h) + (4 * layer) + (2 * h) + (h * 2), json.GetProperty("parameters").GetInt64());

            // 2·T·L·(4H² + 2HI) + 4·T²·H·L with T = 8, L = 4
            const double flops = (2.0 * 8 * 4 * ((4 * h * h) + (2 * h * inner))) + (4.0 * 8 * 8 * h * 4);
            Assert.AreEqual(flops / 1e9, Number(json, "forward_gflop_per_seq"), 1e-4);

            foreach (var field in new[] { "inference_seq_per_s", "training_seq_per_s", "matmul_gflops", "inference_mfu", "training_mfu", "steady_rss_mb" })
            {
                var value = Number(json, field);
                Assert.IsTrue(double.IsFinite(value) && value > 0, $"{field} = {value}");
            }

            Assert.AreEqual(Number(json, "inference_mfu"),
                Number(json, "inference_seq_per_s") * flops / 1e9 / Number(json, "matmul_gflops"), MfuTolerance(Number(json, "inference_mfu")), "inference MFU = achieved ÷ ceiling");
            Assert.AreEqual(Number(json, "training_mfu"),
                Number(json, "training_seq_per_s") * 3 * flops / 1e9 / Number(json, "matmul_gflops"), MfuTolerance(Number(json, "training_mfu")), "training MFU counts three forward passes");
            Assert.IsTrue(Number(json, "peak_rss_mb") >= Number(json, "steady_rss_mb"));
            if (OperatingSystem.IsLinux())
            {
                Assert.IsTrue(Number(json, "training_other_cpu_percent") is >= 0 and <= 100, "the share of CPU other processes took is a percentage");
            }

            Assert.AreEqual(1, json.GetProperty("inference_step_ms").GetArrayLength());
            Assert.AreEqual(1, json.GetProperty("training_step_ms").GetArrayLength());
            Assert.IsFalse(json.TryGetProperty("tokenization_tokens_per_s", out _), "no --text, no tokenization");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    public void ModelFolderWithTextMeasuresItsOwnTokenizer()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var folder = TestPaths.Fixtures("hf-tiny", "bert");
            string[] texts = ["The film is a joy to watch.", "A dull, lifeless script.", "Unbelievably long and tedious, although the actors try hard to save it."];
            var tsv = Path.Combine(work, "train.tsv");
            File.WriteAllLines(tsv, ["label\tsentence", .. texts.Select(t => $"1\t{t}"), "0\t"]);

            var json = RunBench($"--config \"{folder}\" --batch-size 2 --seq-len 12 --text \"{tsv}\"", work);

            var tokenizer = TransformerTokenizer.FromFolder(folder);
            var expected = texts.Sum(t => tokenizer.Encode(t, null, 12).Length);
            Assert.AreEqual(texts.Length, json.GetProperty("tokenization_texts").GetInt32(), "the empty text is skipped");
            Assert.AreEqual(expected, json.GetProperty("tokenization_tokens").GetInt64(), "tokens after truncation to --seq-len, special tokens included");
            Assert.IsTrue(Number(json, "tokenization_tokens_per_s") > 0);
            Assert.AreEqual(folder, json.GetProperty("config").GetString());
            Assert.AreEqual(folder, json.GetProperty("tokenizer").GetString());
            Assert.AreEqual(2, json.GetProperty("layers").GetInt32(), "the folder's config.json is benchmarked");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    [DataRow("--seq-len 0", "--seq-len must be at least 1")]
    [DataRow("--config gpt2-mini --seq-len 1025", "longer than the 1024 positions")]
    [DataRow("--config bert-mini --text \"{0}\"", "--tokenizer")]
    [DataRow("--config bert-mini --tokenizer \"{1}\"", "only matters with --text")]
    public void BadSettingsFailBeforeMeasuringWithAMessage(string arguments, string message)
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var text = Path.Combine(work, "texts.txt");
            File.WriteAllText(text, "a text\n");
            var (exit, stdout, stderr) = CliRunner.Run("bench " + string.Format(System.Globalization.CultureInfo.InvariantCulture, arguments, text, TestPaths.Fixtures("hf-tiny", "bert")));
            Assert.AreEqual(1, exit, stdout);
            StringAssert.Contains(stderr, message);
            Assert.AreEqual(string.Empty, stdout, "nothing is measured");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    // 1 % of the value, plus the JSON's rounding to 4 decimals: on a loaded machine the MFU falls to a few
    // thousandths, where that rounding alone is more than 1 % of it.
    private static double MfuTolerance(double mfu) => (0.01 * mfu) + 1e-4;
}
