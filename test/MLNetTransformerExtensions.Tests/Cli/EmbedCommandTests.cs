using System.Text.Json;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Tests.Training;

namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary>The <c>embed</c> command: sentence-transformers' vectors for the fixture sentences, and errors that name the line with nothing on stdout.</summary>
[TestClass]
public sealed class EmbedCommandTests
{
    [TestMethod]
    [DataRow("builtin:all-MiniLM-L6-v2", "embeddings-minilm", "--batch-size 7")]
    [DataRow("builtin:arctic-embed-xs", "embeddings-arctic-xs", "")]
    public void PrintsSentenceTransformersVectorsForEveryLine(string model, string fixtureName, string arguments)
    {
        var fixture = SentenceEncoderParityTests.Read(fixtureName);
        var work = TestPaths.NewTempDirectory();
        try
        {
            // .jsonl, since a .txt file cannot hold a text that spans lines and keeps every line, blank ones too.
            var input = Path.Combine(work, "in.jsonl");
            File.WriteAllLines(input, fixture.Sentences.Select(s => new JsonObject { ["text"] = s.Text }.ToJsonString()));
            var (exit, stdout, stderr) = CliRunner.Run($"embed --model {model} --input \"{input}\" {arguments}");
            Assert.AreEqual(0, exit, stderr);
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.HasCount(fixture.Sentences.Count, lines);
            for (var i = 0; i < lines.Length; i++)
            {
                using var line = JsonDocument.Parse(lines[i]);
                CollectionAssert.AreEqual(fixture.Sentences[i].InputIds, line.RootElement.GetProperty("input_ids").EnumerateArray().Select(v => v.GetInt32()).ToArray());
                var vector = line.RootElement.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
                var (cosine, maxDiff) = SentenceEncoderParityTests.Compare(vector, fixture.Sentences[i].Embedding);
                Assert.IsTrue(cosine >= 0.99999 && maxDiff <= 1e-4, $"line {i + 1}: cosine {cosine:R}, max |Δ| {maxDiff:E2}");
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    public void PoolingNormalisationAndLengthCanBeChosen()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var input = Path.Combine(work, "in.txt");
            File.WriteAllLines(input, ["A man is playing a guitar on the stage tonight.", "OK"]);
            var (exit, stdout, stderr) = CliRunner.Run($"embed --model builtin:all-MiniLM-L6-v2 --input \"{input}\" --pooling cls --no-normalize --max-length 5");
            Assert.AreEqual(0, exit, stderr);
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.HasCount(2, lines);
            Assert.AreEqual(5, lines[0].GetProperty("input_ids").GetArrayLength());
            var norm = Math.Sqrt(lines[0].GetProperty("embedding").EnumerateArray().Sum(v => v.GetDouble() * v.GetDouble()));
            Assert.IsGreaterThan(1.5, norm, "an unnormalised [CLS] state is far from unit length");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    public void ErrorsNameTheLineAndWriteNothingToStdout()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var input = Path.Combine(work, "in.jsonl");
            File.WriteAllLines(input, ["{\"text\": \"fine\"}", "{\"text\": 3}"]);
            var (exit, stdout, stderr) = CliRunner.Run($"embed --model builtin:all-MiniLM-L6-v2 --input \"{input}\"");
            Assert.AreNotEqual(0, exit);
            Assert.AreEqual(string.Empty, stdout);
            StringAssert.Contains(stderr, "in.jsonl:2");

            File.WriteAllLines(input, ["{\"text\": \"fine\"}", "{\"text\": \"a\", \"text_pair\": \"b\"}"]);
            (exit, stdout, stderr) = CliRunner.Run($"embed --model builtin:all-MiniLM-L6-v2 --input \"{input}\"");
            Assert.AreNotEqual(0, exit);
            Assert.AreEqual(string.Empty, stdout);
            StringAssert.Contains(stderr, "in.jsonl:2");

            (exit, stdout, stderr) = CliRunner.Run($"embed --model builtin:all-MiniLM-L6-v2 --input \"{input}\" --max-length 100000");
            Assert.AreNotEqual(0, exit);
            Assert.AreEqual(string.Empty, stdout);
            StringAssert.Contains(stderr, "--max-length");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
