using System.Text.Json;
using MLNetTransformerExtensions.Tests.Cli;

namespace MLNetTransformerExtensions.Tests.Builtin;

/// <summary>The CLI's <c>--model</c> takes built-in names, converting into the user's cache on first use.</summary>
[TestClass]
public sealed class BuiltinCliTests
{
    [TestMethod]
    [TestCategory("Slow")]
    public void LogitsRunsOnTheBuiltinModelAndCachesItUnderXdgCacheHome()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var input = Path.Combine(work, "in.jsonl");
            File.WriteAllLines(input, ["{\"text\": \"The movie was absolutely wonderful.\"}"]);
            var environment = new Dictionary<string, string> { ["XDG_CACHE_HOME"] = Path.Combine(work, "cache") };
            var (exit, stdout, stderr) = CliRunner.Run($"logits --model builtin:all-MiniLM-L6-v2 --input \"{input}\"", environment: environment);
            Assert.AreEqual(0, exit, stderr);
            using var line = JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Single());
            CollectionAssert.AreEqual(
                new[] { 101, 1996, 3185, 2001, 7078, 6919, 1012, 102 },
                line.RootElement.GetProperty("input_ids").EnumerateArray().Select(v => v.GetInt32()).ToArray());
            Assert.AreEqual(2, line.RootElement.GetProperty("logits").GetArrayLength());
            var models = Path.Combine(work, "cache", "MLNetTransformerExtensions", "models", "builtin", "all-MiniLM-L6-v2");
            Assert.AreEqual(1, Directory.GetDirectories(models).Length, "the converted folder is not in the cache");

            (exit, _, stderr) = CliRunner.Run($"logits --model builtin:bert-huge --input \"{input}\"", environment: environment);
            Assert.AreNotEqual(0, exit);
            StringAssert.Contains(stderr, "builtin:all-MiniLM-L6-v2, builtin:arctic-embed-xs");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void ThreeProcessesFillingAnEmptyCacheAtOnceEndWithOneCompleteFolder()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var input = Path.Combine(work, "in.txt");
            File.WriteAllLines(input, ["The movie was absolutely wonderful."]);
            var environment = new Dictionary<string, string> { ["XDG_CACHE_HOME"] = Path.Combine(work, "cache") };
            var runs = Enumerable.Range(0, 3)
                .Select(_ => Task.Run(() => CliRunner.Run($"embed --model builtin:all-MiniLM-L6-v2 --input \"{input}\"", environment: environment)))
                .ToArray();
            Task.WaitAll(runs);

            foreach (var (exit, _, stderr) in runs.Select(r => r.Result))
            {
                Assert.AreEqual(0, exit, stderr);
            }

            Assert.AreEqual(1, runs.Select(r => r.Result.StdOut).Distinct().Count(), "every process embeds with the same model");
            var models = Path.Combine(work, "cache", "MLNetTransformerExtensions", "models", "builtin", "all-MiniLM-L6-v2");
            Assert.HasCount(1, Directory.EnumerateFileSystemEntries(models), "one converted folder, and no partial one left: " +
                string.Join(", ", Directory.EnumerateFileSystemEntries(models).Select(Path.GetFileName)));

            var (again, stdout, error) = CliRunner.Run($"embed --model builtin:all-MiniLM-L6-v2 --input \"{input}\"", environment: environment);
            Assert.AreEqual(0, again, error);
            Assert.AreEqual(runs[0].Result.StdOut, stdout, "a later process reuses the folder");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void PromptTrainingWithoutAModelUsesTheEmbeddedDecoder()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var data = Path.Combine(work, "reviews.tsv");
            File.WriteAllLines(data,
            [
                "Label\tText",
                "positive\tA wonderful, moving film.",
                "negative\tDull and far too long.",
                "positive\tI loved every minute of it.",
                "negative\tThe worst thing I have seen this year.",
            ]);
            var environment = new Dictionary<string, string> { ["XDG_CACHE_HOME"] = Path.Combine(work, "cache") };
            var model = Path.Combine(work, "model.zip");
            var (exit, stdout, stderr) = CliRunner.Run(
                $"train --data \"{data}\" --test \"{data}\" --kind prompt --epochs 0 --no-baseline --output \"{model}\" --json", environment: environment);
            Assert.AreEqual(0, exit, stderr + stdout);
            StringAssert.Contains(stdout, "builtin:gpt2-mini-gutenberg");
            Assert.IsTrue(File.Exists(model));
            Assert.IsTrue(Directory.Exists(Path.Combine(work, "cache", "MLNetTransformerExtensions", "models", "builtin", "gpt2-mini-gutenberg")),
                "the embedded decoder was not written to the cache");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
