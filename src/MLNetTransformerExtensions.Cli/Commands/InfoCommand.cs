using System.CommandLine;
using System.Reflection;
using MLNetTransformerExtensions.Runtime;
using Spectre.Console;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary><c>info</c>: versions, threads, the native fix, and a forward + backward pass.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var command = new Command("info", "Show library, TorchSharp and libtorch versions, threads, the native compatibility fix, and run a tiny forward + backward pass.");
        command.SetAction(_ => Run());
        return command;
    }

    private static int Run()
    {
        var status = TorchRuntime.EnsureInitialized();
        var check = RuntimeCheck.Run();
        var library = typeof(TorchRuntime).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "unknown";

        var table = new Table().Border(TableBorder.Rounded).AddColumn("Item").AddColumn("Value");
        table.AddRow("MLNetTransformerExtensions", Markup.Escape(library));
        table.AddRow("TorchSharp", Markup.Escape(status.TorchSharpVersion));
        table.AddRow("libtorch", Markup.Escape(status.LibTorchVersion));
        table.AddRow(".NET", Markup.Escape(Environment.Version.ToString()));
        table.AddRow("OS", Markup.Escape(System.Runtime.InteropServices.RuntimeInformation.OSDescription));
        table.AddRow("Threads (libtorch)", check.Threads.ToString(System.Globalization.CultureInfo.InvariantCulture));
        table.AddRow("Native compatibility fix", status.Fix switch
        {
            NativeCompatibilityFix.Applied => "applied (libstdc++ older than GCC 13; patched copy loaded)",
            NativeCompatibilityFix.NotNeeded => "not needed (original library loaded)",
            _ => "not applicable (not Linux)",
        });
        table.AddRow("Loaded glue library", Markup.Escape(status.LoadedLibrary ?? "(TorchSharp's own loading)"));
        table.AddRow("Forward + backward", FormattableString.Invariant($"ok: loss {check.Loss:F4}, weight-gradient norm {check.GradientNorm:F4}"));
        table.AddRow("bfloat16 (--precision auto)", Markup.Escape($"{BFloat16Support.Current}; auto trains in {(BFloat16Support.Current.IsFaster ? "bf16" : "fp32")}"));
        AnsiConsole.Write(table);
        return 0;
    }
}
