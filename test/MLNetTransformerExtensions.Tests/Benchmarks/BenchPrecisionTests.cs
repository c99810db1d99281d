using System.Text.Json;
using MLNetTransformerExtensions.Tests.Cli;

namespace MLNetTransformerExtensions.Tests.Benchmarks;

/// <summary><c>bench --precision bf16</c>: bf16 inference with its own matmul ceiling, beside the fp32 fields.</summary>
[TestClass]
public sealed class BenchPrecisionTests
{
    private static double Number(JsonElement json, string field) => json.GetProperty(field).GetDouble();

    [TestMethod]
    [DataRow("fp32")]
    [DataRow("bf16")]
    public void BenchReportsThePrecisionAndForBFloat16ItsCeiling(string precision)
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var path = Path.Combine(work, "bench.json");
            var (exit, stdout, stderr) = CliRunner.Run($"bench --config bert-mini --batch-size 2 --seq-len 8 --steps 1 --warmup 0 --threads 1 --matmul-size 64 --precision {precision} --json \"{path}\"");
            Assert.AreEqual(0, exit, stderr);
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            var json = document.RootElement;
            Assert.AreEqual(precision, json.GetProperty("precision").GetString());
            Assert.IsGreaterThan(0.0, Number(json, "inference_mfu"), "the fp32-ceiling MFU is always reported");

            if (precision == "fp32")
            {
                Assert.AreEqual(JsonValueKind.Null, json.GetProperty("matmul_gflops_bf16").ValueKind);
                Assert.AreEqual(JsonValueKind.Null, json.GetProperty("inference_mfu_vs_bf16_matmul").ValueKind);
                return;
            }

            StringAssert.Contains(stdout, "bf16 matmul ceiling");
            var ceiling = Number(json, "matmul_gflops_bf16");
            Assert.AreEqual(Math.Max(Number(json, "matmul_gflops_bf16_before"), Number(json, "matmul_gflops_bf16_after")), ceiling, 0.01);
            var achieved = Number(json, "inference_seq_per_s") * Number(json, "forward_gflop_per_seq");
            Assert.AreEqual(achieved / ceiling, Number(json, "inference_mfu_vs_bf16_matmul"), 0.01 * Number(json, "inference_mfu_vs_bf16_matmul") + 1e-4);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
