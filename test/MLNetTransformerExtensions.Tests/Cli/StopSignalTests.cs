using System.Diagnostics;
using System.Runtime.InteropServices;

namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary>
/// Ctrl+C through the CLI's own signal path: a SIGINT sent to a real <c>train</c> process once it has begun fine-tuning
/// stops it after the batch, with exit code 130, a message saying so, and no model file or temporary file left. The
/// signal is sent when the process prints that fine-tuning begins, and the run is far too long to end first.
/// </summary>
[TestClass]
public sealed class StopSignalTests
{
    private const int SigInt = 2;

    [TestMethod]
    [TestCategory("Slow")]
    public void CtrlCDuringTrainStopsAfterTheBatchAndWritesNoModel()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Inconclusive("Sends a POSIX signal.");
        }

        var work = TestPaths.NewTempDirectory();
        try
        {
            var (texts, labels) = Training.SyntheticReviews.Binary(32, seed: 5);
            File.WriteAllLines(Path.Combine(work, "train.tsv"), ["Label\tText", .. texts.Select((t, i) => $"{(labels[i] == 1 ? "pos" : "neg")}\t{t}")]);
            var dll = Path.Combine(AppContext.BaseDirectory, "mlnet-transformers.dll");
            using var process = Process.Start(new ProcessStartInfo("dotnet",
                $"\"{dll}\" train --data train.tsv --model \"{TestPaths.Fixtures("hf-tiny", "bert")}\" --epochs 100000 --batch-size 8 --max-length 24 --no-baseline --output model.zip")
            {
                WorkingDirectory = work,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            })!;
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = new List<string>();
            while (process.StandardOutput.ReadLine() is { } line)
            {
                stdout.Add(line);
                if (line.StartsWith("Fine-tuning ", StringComparison.Ordinal))
                {
                    Assert.AreEqual(0, Kill(process.Id, SigInt), "the signal could not be sent");
                    break;
                }
            }

            stdout.Add(process.StandardOutput.ReadToEnd());
            if (!process.WaitForExit(TimeSpan.FromMinutes(20)))
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail("train did not stop after Ctrl+C.");
            }

            var output = string.Join('\n', stdout) + stderr.Result;
            Assert.AreEqual(130, process.ExitCode, output);
            StringAssert.Contains(stderr.Result, "Stopping after this batch");
            StringAssert.Contains(stderr.Result, "training was cancelled; no model file was written");
            CollectionAssert.AreEqual(new[] { "train.tsv" }, Directory.EnumerateFileSystemEntries(work).Select(Path.GetFileName).ToArray(),
                "nothing but the data is left: no model, no temporary file");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
